//! The builder the emitter writes function bodies with, through MLIR's API.
//! [`Func`] appends ops to the block under construction: a function's entry
//! block, or the body of a `linalg.generic` or `scf.for` inside it. Each of its
//! methods builds one upstream op. [`Buf`] is a memref value and its type;
//! [`Ix`] one result of an indexing map.

use ditto_ir::melior::{
    dialect::arith::{CmpfPredicate, CmpiPredicate},
    ir::{
        attribute::AttributeLike,
        attribute::{
            ArrayAttribute, DenseI32ArrayAttribute, DenseI64ArrayAttribute, FlatSymbolRefAttribute,
            FloatAttribute, IntegerAttribute, StridedLayoutAttribute, StringAttribute,
            TypeAttribute,
        },
        operation::{OperationBuilder, OperationLike},
        r#type::ShapedTypeLike,
        r#type::{FunctionType, IntegerType, MemRefType},
        AffineExpr, AffineMap, Attribute, Block, BlockLike, BlockRef, Identifier, Location, Module,
        Operation, Region, RegionLike, Type, Value, ValueLike,
    },
    Context,
};

use super::Mode;
use crate::config::ModelConfig;

/// A memref value and its type.
#[derive(Clone, Copy)]
pub(super) struct Buf<'c, 'a> {
    pub(super) value: Value<'c, 'a>,
    pub(super) ty: MemRefType<'c>,
}

/// One result of an indexing map, over the loop dims named by the
/// `linalg.generic`'s domain.
#[derive(Clone, Copy)]
pub(super) enum Ix {
    /// The dim itself.
    Dim(&'static str),
    /// `dim mod n`
    Mod(&'static str, usize),
    /// `dim floordiv n`
    FloorDiv(&'static str, usize),
}

/// Each dim by itself: the identity results for `dims`.
pub(super) fn ix(dims: &[&'static str]) -> Vec<Ix> {
    dims.iter().map(|&d| Ix::Dim(d)).collect()
}

/// Who may call a function: an entry point of the executable (with a C
/// interface) or a private function of the module.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Visibility {
    Entry,
    Private,
}

/// A function body under construction. Buffers get a leading row dimension
/// of extent `rows` in prefill mode.
pub(super) struct Func<'c, 'a> {
    pub(super) context: &'c Context,
    location: Location<'c>,
    /// Where ops are appended.
    block: BlockRef<'c, 'a>,
    pub(super) mode: Mode,
    /// The position of the first token (every function but the LM head).
    pub(super) pos: Option<Value<'c, 'a>>,
    /// T (prefill only).
    pub(super) rows: Option<Value<'c, 'a>>,
    /// Heap buffers to free before returning.
    heap: Vec<Buf<'c, 'a>>,
}

impl<'c, 'a> Func<'c, 'a> {
    /// Appends `func.func @name(arguments)` to `module` and starts its body.
    pub(super) fn new(
        context: &'c Context,
        module: &'a Module<'c>,
        name: &str,
        visibility: Visibility,
        arguments: &[Type<'c>],
        mode: Mode,
    ) -> Self {
        let location = Location::unknown(context);
        let function_type = FunctionType::new(context, arguments, &[]);
        let entry = Block::new(&arguments.iter().map(|&t| (t, location)).collect::<Vec<_>>());
        let region = Region::new();
        region.append_block(entry);
        let named = |key: &str, value: Attribute<'c>| (Identifier::new(context, key), value);
        let mut attributes = vec![
            named("sym_name", StringAttribute::new(context, name).into()),
            named(
                "function_type",
                TypeAttribute::new(function_type.into()).into(),
            ),
        ];
        attributes.push(match visibility {
            Visibility::Entry => named("llvm.emit_c_interface", Attribute::unit(context)),
            Visibility::Private => named(
                "sym_visibility",
                StringAttribute::new(context, "private").into(),
            ),
        });
        let op = OperationBuilder::new("func.func", location)
            .add_attributes(&attributes)
            .add_regions([region])
            .build()
            .expect("func.func has a fixed, valid shape");
        let block = body_of(module.body().append_operation(op));
        Func {
            context,
            location,
            block,
            mode,
            pos: None,
            rows: None,
            heap: Vec::new(),
        }
    }

    /// The function's `index`th argument.
    pub(super) fn argument(&self, index: usize) -> Value<'c, 'a> {
        self.block
            .argument(index)
            .expect("the function has this argument")
            .into()
    }

    /// The function's `index`th argument, a memref.
    pub(super) fn buffer_argument(&self, index: usize) -> Buf<'c, 'a> {
        let value = self.argument(index);
        let ty = MemRefType::try_from(value.r#type()).expect("a memref argument");
        Buf { value, ty }
    }

    pub(super) fn pos(&self) -> Value<'c, 'a> {
        self.pos.expect("a function with a position argument")
    }

    pub(super) fn rows(&self) -> Value<'c, 'a> {
        self.rows.expect("prefill rows")
    }

    pub(super) fn f32_type(&self) -> Type<'c> {
        Type::float32(self.context)
    }

    /// `memref<[?x]dims x f32>`: `dims` per row (with the row dim `?` in
    /// prefill mode).
    pub(super) fn row_type(&self, dims: &[usize]) -> MemRefType<'c> {
        let mut shape = Vec::with_capacity(dims.len() + 1);
        if self.mode == Mode::Prefill {
            shape.push(dynamic());
        }
        shape.extend(dims.iter().map(|&d| d as i64));
        self.memref(&shape)
    }

    /// `memref<shape x f32>` (identity layout; [`dynamic`] for `?`).
    pub(super) fn memref(&self, shape: &[i64]) -> MemRefType<'c> {
        memref_of(self.f32_type(), shape)
    }

    /// `memref<shape x f32, strided<strides, offset: ?>>`.
    pub(super) fn strided(&self, shape: &[i64], strides: &[i64]) -> MemRefType<'c> {
        let layout = StridedLayoutAttribute::new(
            self.context,
            ditto_ir::dynamic_stride_or_offset(),
            strides,
        );
        MemRefType::new(self.f32_type(), shape, Some(layout.into()), None)
    }

    pub(super) fn location(&self) -> Location<'c> {
        self.location
    }

    /// Appends `op` and returns its one result.
    pub(super) fn append_value(&self, op: Operation<'c>) -> Value<'c, 'a> {
        self.block
            .append_operation(op)
            .result(0)
            .expect("the op has one result")
            .into()
    }

    fn op(&self, name: &str) -> OperationBuilder<'c> {
        OperationBuilder::new(name, self.location)
    }

    fn named(&self, key: &str, value: impl Into<Attribute<'c>>) -> (Identifier<'c>, Attribute<'c>) {
        (Identifier::new(self.context, key), value.into())
    }

    /// `arith.constant V : index`
    pub(super) fn index(&mut self, value: usize) -> Value<'c, 'a> {
        let index = Type::index(self.context);
        self.constant(IntegerAttribute::new(index, value as i64).into())
    }

    /// `arith.constant V : i32`
    pub(super) fn i32(&mut self, value: i32) -> Value<'c, 'a> {
        let i32_type = IntegerType::new(self.context, 32).into();
        self.constant(IntegerAttribute::new(i32_type, value as i64).into())
    }

    /// `arith.constant V : f32`
    pub(super) fn f32(&mut self, value: f32) -> Value<'c, 'a> {
        let f32_type = self.f32_type();
        self.constant(FloatAttribute::new(self.context, f32_type, value as f64).into())
    }

    /// `arith.constant V : f64`
    pub(super) fn f64(&mut self, value: f64) -> Value<'c, 'a> {
        let f64_type = Type::float64(self.context);
        self.constant(FloatAttribute::new(self.context, f64_type, value).into())
    }

    fn constant(&mut self, value: Attribute<'c>) -> Value<'c, 'a> {
        let op = self
            .op("arith.constant")
            .add_attributes(&[self.named("value", value)])
            .add_results(&[value.r#type()])
            .build()
            .expect("arith.constant has a fixed, valid shape");
        self.append_value(op)
    }

    /// A scratch buffer of `dims` per row: on the stack for decode, on the
    /// heap (freed at return) for prefill.
    pub(super) fn buffer(&mut self, dims: &[usize]) -> Buf<'c, 'a> {
        let ty = self.row_type(dims);
        match self.mode {
            Mode::Decode => self.alloca(ty, &[]),
            Mode::Prefill => {
                let rows = self.rows();
                self.alloc(ty, &[rows])
            }
        }
    }

    /// `memref.alloca(sizes) : ty`
    pub(super) fn alloca(&mut self, ty: MemRefType<'c>, sizes: &[Value<'c, 'a>]) -> Buf<'c, 'a> {
        let value = self.allocation("memref.alloca", ty, sizes);
        Buf { value, ty }
    }

    /// `memref.alloc(sizes) : ty`, freed at return.
    pub(super) fn alloc(&mut self, ty: MemRefType<'c>, sizes: &[Value<'c, 'a>]) -> Buf<'c, 'a> {
        let value = self.allocation("memref.alloc", ty, sizes);
        let buf = Buf { value, ty };
        self.heap.push(buf);
        buf
    }

    fn allocation(
        &mut self,
        name: &str,
        ty: MemRefType<'c>,
        sizes: &[Value<'c, 'a>],
    ) -> Value<'c, 'a> {
        let op = self
            .op(name)
            .add_operands(sizes)
            .add_attributes(&[self.segments(&[sizes.len(), 0])])
            .add_results(&[ty.into()])
            .build()
            .expect("allocations have a fixed, valid shape");
        self.append_value(op)
    }

    fn segments(&self, sizes: &[usize]) -> (Identifier<'c>, Attribute<'c>) {
        let sizes: Vec<i32> = sizes.iter().map(|&n| n as i32).collect();
        self.named(
            "operandSegmentSizes",
            DenseI32ArrayAttribute::new(self.context, &sizes),
        )
    }

    /// `memref.dim %buf, %c0`: the extent of `buf`'s first dim.
    pub(super) fn rows_of(&mut self, buf: Buf<'c, 'a>) -> Value<'c, 'a> {
        let c0 = self.index(0);
        let op = self
            .op("memref.dim")
            .add_operands(&[buf.value, c0])
            .add_results(&[Type::index(self.context)])
            .build()
            .expect("memref.dim has a fixed, valid shape");
        self.append_value(op)
    }

    /// `memref.load %buf[indices]`
    pub(super) fn load(&mut self, buf: Buf<'c, 'a>, indices: &[Value<'c, 'a>]) -> Value<'c, 'a> {
        let element = buf.ty.element();
        let op = self
            .op("memref.load")
            .add_operands(&[buf.value])
            .add_operands(indices)
            .add_results(&[element])
            .build()
            .expect("memref.load has a fixed, valid shape");
        self.append_value(op)
    }

    /// `memref.subview %source[offsets] [sizes] [1, ...]` to `ty`, each
    /// offset and size a constant or a value.
    pub(super) fn subview(
        &mut self,
        source: Buf<'c, 'a>,
        offsets: &[Extent<'c, 'a>],
        sizes: &[Extent<'c, 'a>],
        ty: MemRefType<'c>,
    ) -> Buf<'c, 'a> {
        let (offset_values, static_offsets) = split(offsets);
        let (size_values, static_sizes) = split(sizes);
        let strides = vec![1; offsets.len()];
        let op = self
            .op("memref.subview")
            .add_operands(&[source.value])
            .add_operands(&offset_values)
            .add_operands(&size_values)
            .add_attributes(&[
                self.segments(&[1, offset_values.len(), size_values.len(), 0]),
                self.named(
                    "static_offsets",
                    DenseI64ArrayAttribute::new(self.context, &static_offsets),
                ),
                self.named(
                    "static_sizes",
                    DenseI64ArrayAttribute::new(self.context, &static_sizes),
                ),
                self.named(
                    "static_strides",
                    DenseI64ArrayAttribute::new(self.context, &strides),
                ),
            ])
            .add_results(&[ty.into()])
            .build()
            .expect("memref.subview has a fixed, valid shape");
        Buf {
            value: self.append_value(op),
            ty,
        }
    }

    /// `memref.expand_shape %buf reassociation output_shape [shape]`.
    pub(super) fn expand_shape(
        &mut self,
        buf: Buf<'c, 'a>,
        reassociation: &[&[i64]],
        shape: &[Extent<'c, 'a>],
        ty: MemRefType<'c>,
    ) -> Buf<'c, 'a> {
        let (values, static_shape) = split(shape);
        let op = self
            .op("memref.expand_shape")
            .add_operands(&[buf.value])
            .add_operands(&values)
            .add_attributes(&[
                self.named("reassociation", self.reassociation(reassociation)),
                self.named(
                    "static_output_shape",
                    DenseI64ArrayAttribute::new(self.context, &static_shape),
                ),
            ])
            .add_results(&[ty.into()])
            .build()
            .expect("memref.expand_shape has a fixed, valid shape");
        Buf {
            value: self.append_value(op),
            ty,
        }
    }

    /// `memref.collapse_shape %buf reassociation`.
    pub(super) fn collapse_shape(
        &mut self,
        buf: Buf<'c, 'a>,
        reassociation: &[&[i64]],
        ty: MemRefType<'c>,
    ) -> Buf<'c, 'a> {
        let op = self
            .op("memref.collapse_shape")
            .add_operands(&[buf.value])
            .add_attributes(&[self.named("reassociation", self.reassociation(reassociation))])
            .add_results(&[ty.into()])
            .build()
            .expect("memref.collapse_shape has a fixed, valid shape");
        Buf {
            value: self.append_value(op),
            ty,
        }
    }

    fn reassociation(&self, groups: &[&[i64]]) -> ArrayAttribute<'c> {
        let i64_type = IntegerType::new(self.context, 64).into();
        let groups: Vec<Attribute<'c>> = groups
            .iter()
            .map(|group| {
                let dims: Vec<Attribute<'c>> = group
                    .iter()
                    .map(|&d| IntegerAttribute::new(i64_type, d).into())
                    .collect();
                ArrayAttribute::new(self.context, &dims).into()
            })
            .collect();
        ArrayAttribute::new(self.context, &groups)
    }

    /// `linalg.fill ins(value) outs(buf)`, with the body MLIR's own builder
    /// gives it (yield the input).
    pub(super) fn fill(&mut self, buf: Buf<'c, 'a>, value: Value<'c, 'a>) {
        let op = self
            .op("linalg.fill")
            .add_operands(&[value, buf.value])
            .add_attributes(&[self.segments(&[1, 1])])
            .add_regions([self.body_region(2)])
            .build()
            .expect("linalg.fill has a fixed, valid shape");
        let body = body_of(self.block.append_operation(op));
        let input = body.argument(0).expect("the fill body's input").into();
        body.append_operation(self.yield_op("linalg.yield", &[input]));
    }

    /// A region of one block with `arguments` f32 arguments.
    fn body_region(&self, arguments: usize) -> Region<'c> {
        let f32_type = self.f32_type();
        let block = Block::new(&vec![(f32_type, self.location); arguments]);
        let region = Region::new();
        region.append_block(block);
        region
    }

    fn yield_op(&self, name: &str, values: &[Value<'c, 'a>]) -> Operation<'c> {
        self.op(name)
            .add_operands(values)
            .build()
            .expect("terminators have a fixed, valid shape")
    }

    /// Row loop dims for indexing maps: `["t"]` in prefill, none in decode.
    pub(super) fn row_dims(&self) -> Vec<&'static str> {
        match self.mode {
            Mode::Decode => vec![],
            Mode::Prefill => vec!["t"],
        }
    }

    /// A `linalg.generic` over `dims` (those in `reduce` are reductions).
    /// Operands are `(buffer, indexing map results)`. `body` builds the body
    /// from the block arguments (inputs then outputs) and returns the
    /// yielded value.
    pub(super) fn generic(
        &mut self,
        dims: &[&str],
        reduce: &[&str],
        ins: &[(Buf<'c, 'a>, &[Ix])],
        outs: &[(Buf<'c, 'a>, &[Ix])],
        body: impl FnOnce(&mut Self, &[Value<'c, 'a>]) -> Value<'c, 'a>,
    ) {
        let operands: Vec<Value<'c, 'a>> = ins.iter().chain(outs).map(|(b, _)| b.value).collect();
        let maps: Vec<Attribute<'c>> = ins
            .iter()
            .chain(outs)
            .map(|(_, results)| self.indexing_map(dims, results))
            .collect();
        let iterators: Vec<Attribute<'c>> = dims
            .iter()
            .map(|d| iterator_type(self.context, reduce.contains(d)))
            .collect();
        let op = self
            .op("linalg.generic")
            .add_operands(&operands)
            .add_attributes(&[
                self.named("indexing_maps", ArrayAttribute::new(self.context, &maps)),
                self.named(
                    "iterator_types",
                    ArrayAttribute::new(self.context, &iterators),
                ),
                self.segments(&[ins.len(), outs.len()]),
            ])
            .add_regions([self.body_region(operands.len())])
            .build()
            .expect("linalg.generic has a fixed, valid shape");
        let inner = body_of(self.block.append_operation(op));
        let arguments: Vec<Value<'c, 'a>> = (0..operands.len())
            .map(|i| inner.argument(i).expect("a body argument").into())
            .collect();
        let outer = std::mem::replace(&mut self.block, inner);
        let result = body(self, &arguments);
        self.block
            .append_operation(self.yield_op("linalg.yield", &[result]));
        self.block = outer;
    }

    fn indexing_map(&self, dims: &[&str], results: &[Ix]) -> Attribute<'c> {
        let dim = |name: &str| {
            let position = dims
                .iter()
                .position(|d| *d == name)
                .expect("an indexing map names a dim of its domain");
            AffineExpr::dim(self.context, position)
        };
        let constant = |n: usize| AffineExpr::constant(self.context, n as i64);
        let exprs: Vec<AffineExpr<'c>> = results
            .iter()
            .map(|result| match *result {
                Ix::Dim(d) => dim(d),
                Ix::Mod(d, n) => AffineExpr::modulo(dim(d), constant(n)),
                Ix::FloorDiv(d, n) => AffineExpr::floor_div(dim(d), constant(n)),
            })
            .collect();
        ditto_ir::affine_map_attribute(AffineMap::new(self.context, dims.len(), 0, &exprs))
    }

    /// `scf.for %i = lower to upper step 1`, with `body(f, %i)` inside.
    pub(super) fn for_loop(
        &mut self,
        lower: Value<'c, 'a>,
        upper: Value<'c, 'a>,
        step: Value<'c, 'a>,
        body: impl FnOnce(&mut Self, Value<'c, 'a>),
    ) {
        let block = Block::new(&[(Type::index(self.context), self.location)]);
        let region = Region::new();
        region.append_block(block);
        let op = self
            .op("scf.for")
            .add_operands(&[lower, upper, step])
            .add_regions([region])
            .build()
            .expect("scf.for has a fixed, valid shape");
        let inner = body_of(self.block.append_operation(op));
        let induction = inner.argument(0).expect("the induction variable").into();
        let outer = std::mem::replace(&mut self.block, inner);
        body(self, induction);
        self.block.append_operation(self.yield_op("scf.yield", &[]));
        self.block = outer;
    }

    /// `linalg.index dim` inside a body.
    pub(super) fn linalg_index(&mut self, dim: usize) -> Value<'c, 'a> {
        let i64_type = IntegerType::new(self.context, 64).into();
        let op = self
            .op("linalg.index")
            .add_attributes(&[self.named("dim", IntegerAttribute::new(i64_type, dim as i64))])
            .add_results(&[Type::index(self.context)])
            .build()
            .expect("linalg.index has a fixed, valid shape");
        self.append_value(op)
    }

    /// `%r = arith.OP %a, %b` (or any two-operand op named `OP` whose result
    /// has the operands' type).
    pub(super) fn bin(&mut self, name: &str, a: Value<'c, 'a>, b: Value<'c, 'a>) -> Value<'c, 'a> {
        self.operation(name, &[a, b], a.r#type(), &[])
    }

    /// As [`Func::bin`], allowing LLVM to reassociate and contract (so that a
    /// dot product over a contiguous row vectorizes).
    pub(super) fn bin_reassoc(
        &mut self,
        name: &str,
        a: Value<'c, 'a>,
        b: Value<'c, 'a>,
    ) -> Value<'c, 'a> {
        let fastmath = Attribute::parse(self.context, "#arith.fastmath<reassoc,contract>")
            .expect("a valid fastmath flag set");
        let attribute = self.named("fastmath", fastmath);
        self.operation(name, &[a, b], a.r#type(), &[attribute])
    }

    /// `%r = NAME %a` whose result has the operand's type (`arith.negf`,
    /// `math.rsqrt`, `math.exp`, ...).
    pub(super) fn unary(&mut self, name: &str, a: Value<'c, 'a>) -> Value<'c, 'a> {
        self.operation(name, &[a], a.r#type(), &[])
    }

    /// `math.fma %a, %b, %c`: a·b + c, rounded once.
    pub(super) fn fma(
        &mut self,
        a: Value<'c, 'a>,
        b: Value<'c, 'a>,
        c: Value<'c, 'a>,
    ) -> Value<'c, 'a> {
        self.operation("math.fma", &[a, b, c], a.r#type(), &[])
    }

    /// `%r = NAME %a : T to ty` (`arith.index_cast`, `arith.sitofp`, ...).
    pub(super) fn cast(&mut self, name: &str, a: Value<'c, 'a>, ty: Type<'c>) -> Value<'c, 'a> {
        self.operation(name, &[a], ty, &[])
    }

    /// `arith.select %condition, %a, %b`
    pub(super) fn select(
        &mut self,
        condition: Value<'c, 'a>,
        a: Value<'c, 'a>,
        b: Value<'c, 'a>,
    ) -> Value<'c, 'a> {
        self.operation("arith.select", &[condition, a, b], a.r#type(), &[])
    }

    /// `arith.cmpf PREDICATE, %a, %b`
    pub(super) fn cmpf(
        &mut self,
        predicate: CmpfPredicate,
        a: Value<'c, 'a>,
        b: Value<'c, 'a>,
    ) -> Value<'c, 'a> {
        self.compare("arith.cmpf", predicate as i64, a, b)
    }

    /// `arith.cmpi PREDICATE, %a, %b`
    pub(super) fn cmpi(
        &mut self,
        predicate: CmpiPredicate,
        a: Value<'c, 'a>,
        b: Value<'c, 'a>,
    ) -> Value<'c, 'a> {
        self.compare("arith.cmpi", predicate as i64, a, b)
    }

    fn compare(
        &mut self,
        name: &str,
        predicate: i64,
        a: Value<'c, 'a>,
        b: Value<'c, 'a>,
    ) -> Value<'c, 'a> {
        let i64_type = IntegerType::new(self.context, 64).into();
        let i1 = IntegerType::new(self.context, 1).into();
        let predicate = self.named("predicate", IntegerAttribute::new(i64_type, predicate));
        self.operation(name, &[a, b], i1, &[predicate])
    }

    fn operation(
        &mut self,
        name: &str,
        operands: &[Value<'c, 'a>],
        result: Type<'c>,
        attributes: &[(Identifier<'c>, Attribute<'c>)],
    ) -> Value<'c, 'a> {
        let op = self
            .op(name)
            .add_operands(operands)
            .add_attributes(attributes)
            .add_results(&[result])
            .build()
            .expect("a one-result op");
        self.append_value(op)
    }

    /// `func.call @callee(operands)` of a function without results.
    pub(super) fn call(&mut self, callee: &str, operands: &[Value<'c, 'a>]) {
        let op = self
            .op("func.call")
            .add_attributes(&[
                self.named("callee", FlatSymbolRefAttribute::new(self.context, callee))
            ])
            .add_operands(operands)
            .build()
            .expect("func.call has a fixed, valid shape");
        self.block.append_operation(op);
    }

    /// Frees the heap buffers and returns.
    pub(super) fn finish(mut self) {
        for buf in std::mem::take(&mut self.heap) {
            let op = self
                .op("memref.dealloc")
                .add_operands(&[buf.value])
                .build()
                .expect("memref.dealloc has a fixed, valid shape");
            self.block.append_operation(op);
        }
        self.block
            .append_operation(self.yield_op("func.return", &[]));
    }
}

/// An offset or extent: a constant or an SSA value.
#[derive(Clone, Copy)]
pub(super) enum Extent<'c, 'a> {
    Static(usize),
    Value(Value<'c, 'a>),
}

/// The SSA values of `extents`, and every extent as the static list MLIR
/// keeps beside them ([`dynamic`] where a value stands).
fn split<'c, 'a>(extents: &[Extent<'c, 'a>]) -> (Vec<Value<'c, 'a>>, Vec<i64>) {
    let mut values = Vec::new();
    let statics = extents
        .iter()
        .map(|extent| match *extent {
            Extent::Static(n) => n as i64,
            Extent::Value(v) => {
                values.push(v);
                dynamic()
            }
        })
        .collect();
    (values, statics)
}

/// The marker of a dynamic size, stride or offset (`?`).
pub(super) fn dynamic() -> i64 {
    ditto_ir::dynamic_size()
}

/// The first block of the op's first region.
fn body_of<'c, 'a>(op: ditto_ir::melior::ir::OperationRef<'c, 'a>) -> BlockRef<'c, 'a> {
    op.region(0)
        .expect("the op has a region")
        .first_block()
        .expect("the region has a block")
}

/// `#linalg.iterator_type<parallel>` or `<reduction>`.
fn iterator_type(context: &Context, reduction: bool) -> Attribute<'_> {
    let text = if reduction {
        "#linalg.iterator_type<reduction>"
    } else {
        "#linalg.iterator_type<parallel>"
    };
    Attribute::parse(context, text).expect("a linalg iterator type")
}

/// `memref<shape x element>` (identity layout; [`dynamic`] for `?`).
pub(super) fn memref_of<'c>(element: Type<'c>, shape: &[i64]) -> MemRefType<'c> {
    MemRefType::new(element, shape, None, None)
}

/// `memref<L x ? x KV x hd x f32>`: the KV cache of every layer.
pub(super) fn cache_type<'c>(context: &'c Context, cfg: &ModelConfig) -> MemRefType<'c> {
    let shape = [
        cfg.n_layers as i64,
        dynamic(),
        cfg.n_kv_heads as i64,
        cfg.head_dim as i64,
    ];
    memref_of(Type::float32(context), &shape)
}

/// `memref<?xi8>`: the weight blob every entry point takes first.
pub(super) fn blob_type(context: &Context) -> MemRefType<'_> {
    memref_of(IntegerType::new(context, 8).into(), &[dynamic()])
}
