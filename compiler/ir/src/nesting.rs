//! A bound on how deeply MLIR text nests, checked before MLIR sees the text.
//!
//! MLIR's parser descends recursively into every region, attribute, type and
//! parenthesised expression, and into every operator of an affine expression
//! (`d0 + d1 + …` recurses once per `+`, `- - d0` once per `-`). A few
//! thousand levels exhaust a thread's stack; measured with LLVM 22 in
//! ditto-opt (parse, verify, print), the process aborts at
//!
//! | nesting                         | 8 MiB stack | 2 MiB stack |
//! |---------------------------------|------------:|------------:|
//! | `scf.execute_region { … }`      |       3,900 |         950 |
//! | `module { … }`                  |       3,900 |             |
//! | dictionaries `{a = {a = …}}`    |       6,200 |       1,500 |
//! | arrays `[[…]]`                  |       6,800 |             |
//! | parentheses in an affine map    |       6,800 |             |
//! | `tuple<tuple<…>>`               |      15,900 |             |
//! | unary minus `- - … d0`          |       7,500 |       1,800 |
//! | `d0 + d1 + …`                   |      52,000 |      13,000 |
//! | `d0 floordiv 7 floordiv 7 …`    |      58,000 |      14,000 |
//!
//! and no diagnostic can replace a stack overflow. A cheap scan of the text
//! refuses anything deeper than [`MAX_DEPTH`] levels instead: far beyond any
//! model module (the imported ones nest about 6 levels), and small enough
//! that the parser, the verifier and the passes stay within a thread's stack
//! even where it is 2 MiB (Rust's default for spawned threads).
//!
//! The scan runs outside string literals and `//` comments. Each open
//! bracket `{`, `[`, `(`, `<` is a level until its closing bracket (`->`,
//! `>=` and `<=` are operators, not brackets; a closing bracket of another
//! kind than the innermost open one closes down to the nearest of its kind,
//! or nothing). Each operator of an expression — `+`, `-`, `*`, `mod`,
//! `floordiv`, `ceildiv` — is a level too, until the `,` or `=` that ends
//! the expression at its bracket level, or that level's closing bracket
//! (`-` inside an SSA name such as `%a-b` is no operator). The depth, the
//! sum of all the levels open, is at least the depth MLIR's parser recurses
//! to.

/// The deepest nesting accepted: open brackets and the operators of the
/// expressions inside them, together.
pub const MAX_DEPTH: usize = 256;

/// Where the text first nests deeper than the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{source_name}:{line}:{column}: error: nested more than {limit} levels deep \
     (brackets `{{`, `[`, `(`, `<` and the operators of an expression, together): \
     refused before parsing, which would overflow MLIR's recursive parser's stack"
)]
pub struct TooDeep {
    pub source_name: String,
    /// 1-based, as in MLIR's locations.
    pub line: usize,
    /// 1-based byte column, as in MLIR's locations.
    pub column: usize,
    pub limit: usize,
}

/// An open bracket, and the operators counted at its level.
struct Level {
    close: u8,
    operators: usize,
}

/// Checks that `text` nests at most `limit` levels deep; `source_name`
/// names it in the error.
pub fn check(text: &[u8], source_name: &str, limit: usize) -> Result<(), TooDeep> {
    // levels[0] is the text outside any bracket.
    let mut levels = vec![Level {
        close: 0,
        operators: 0,
    }];
    let mut depth = 0usize; // open brackets + every level's operators
    let (mut line, mut line_start) = (1usize, 0usize);
    let mut i = 0;
    while i < text.len() {
        let byte = text[i];
        let next = text.get(i + 1).copied();
        let at = i;
        i += 1;
        let deeper = match byte {
            b'\n' => {
                line += 1;
                line_start = i;
                false
            }
            b'"' => {
                // A string literal ends at its closing quote, or (an error
                // for MLIR) at the end of the line.
                while i < text.len() && text[i] != b'"' && text[i] != b'\n' {
                    let escaped = text[i] == b'\\' && text.get(i + 1) != Some(&b'\n');
                    i += if escaped { 2 } else { 1 };
                }
                if i < text.len() && text[i] == b'"' {
                    i += 1;
                }
                false
            }
            b'/' if next == Some(b'/') => {
                while i < text.len() && text[i] != b'\n' {
                    i += 1;
                }
                false
            }
            // Operators that are neither brackets nor expression operators.
            b'-' if next == Some(b'>') => {
                i += 1;
                false
            }
            b'<' | b'>' | b'=' if next == Some(b'=') => {
                i += 1;
                reset(&mut levels, &mut depth);
                false
            }
            // SSA values and block labels: their names may hold `-`.
            b'%' | b'^' => {
                while i < text.len() && is_suffix_char(text[i]) {
                    i += 1;
                }
                false
            }
            // Symbols, aliases, dialect types and attributes: bare names.
            b'@' | b'#' | b'!' => {
                while i < text.len() && is_bare_char(text[i]) {
                    i += 1;
                }
                false
            }
            b'{' | b'[' | b'(' | b'<' => {
                let close = match byte {
                    b'{' => b'}',
                    b'[' => b']',
                    b'(' => b')',
                    _ => b'>',
                };
                levels.push(Level {
                    close,
                    operators: 0,
                });
                depth += 1;
                true
            }
            b'}' | b']' | b')' | b'>' => {
                if let Some(open) = levels[1..].iter().rposition(|l| l.close == byte) {
                    for level in levels.drain(open + 1..) {
                        depth -= 1 + level.operators;
                    }
                }
                false
            }
            b',' | b'=' => {
                reset(&mut levels, &mut depth);
                false
            }
            b'+' | b'-' | b'*' => operator(&mut levels, &mut depth),
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let start = at;
                while i < text.len() && is_bare_char(text[i]) {
                    i += 1;
                }
                match &text[start..i] {
                    b"mod" | b"floordiv" | b"ceildiv" => operator(&mut levels, &mut depth),
                    _ => false,
                }
            }
            _ => false,
        };
        if deeper && depth > limit {
            return Err(TooDeep {
                source_name: source_name.to_string(),
                line,
                column: at - line_start + 1,
                limit,
            });
        }
    }
    Ok(())
}

/// Counts an expression operator at the innermost level.
fn operator(levels: &mut [Level], depth: &mut usize) -> bool {
    if let Some(level) = levels.last_mut() {
        level.operators += 1;
        *depth += 1;
    }
    true
}

/// Ends the expression at the innermost level (`,` or `=`).
fn reset(levels: &mut [Level], depth: &mut usize) {
    if let Some(level) = levels.last_mut() {
        *depth -= level.operators;
        level.operators = 0;
    }
}

/// A character of a bare identifier after its first: `[A-Za-z0-9_$.]`.
fn is_bare_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'$' | b'.')
}

/// A character of an SSA value's or block's suffix id: `[A-Za-z0-9$._-]`.
fn is_suffix_char(c: u8) -> bool {
    is_bare_char(c) || c == b'-'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth(text: &str) -> usize {
        (0..64)
            .find(|&limit| check(text.as_bytes(), "t", limit).is_ok())
            .expect("shallower than 64")
    }

    #[test]
    fn counts_every_bracket_kind_together() {
        assert_eq!(depth(""), 0);
        assert_eq!(depth("module {}"), 1);
        assert_eq!(depth("module { func.func @f() { } }"), 2);
        assert_eq!(depth("x = [[[1]]]"), 3);
        assert_eq!(depth("{a = [(1)]}"), 3);
        assert_eq!(depth("tuple<tuple<i32>>"), 2);
        assert_eq!(depth("memref<4xf32, strided<[1], offset: ?>>"), 3);
    }

    #[test]
    fn arrows_and_comparisons_are_not_brackets() {
        assert_eq!(depth("#map = affine_map<(d0, d1) -> (d0)>"), 2);
        assert_eq!(depth("() -> ()"), 1);
        assert_eq!(depth("affine_set<(d0) : (d0 >= 0, d0 <= 9)>"), 2);
        // Many of them in a row do not add up.
        assert_eq!(depth(&"#m = affine_map<(d0) -> (d0)>\n".repeat(1000)), 2);
    }

    #[test]
    fn strings_and_comments_are_skipped() {
        assert_eq!(depth(r#"{name = "[[[[{{{(((<<<"}"#), 1);
        assert_eq!(depth(r#"{name = "a \" [[[ \\"}"#), 1);
        assert_eq!(depth(r#"{name = "a + - * mod"}"#), 1);
        assert_eq!(depth("// {{{{ [[[[ + - + -\n{}"), 1);
        assert_eq!(depth("{} // ((((("), 1);
        // An unterminated string ends with its line.
        assert_eq!(depth("\"abc\n[[x]]"), 2);
        assert_eq!(depth("\"abc\\\n[[x]]"), 2);
        let error = check(b"\"a\\\n[[x]]", "t", 1).unwrap_err();
        assert_eq!((error.line, error.column), (2, 2));
    }

    #[test]
    fn a_stray_closing_bracket_does_not_hide_depth() {
        // Closing brackets of a kind not open, or more than were opened,
        // take nothing off the depth.
        assert_eq!(depth(">>>> ]]]] [[[["), 4);
        assert_eq!(depth("{{{{ ] ) [[[["), 8);
        // One of a kind open further out closes down to it.
        assert_eq!(depth("{ ( < < ) [[[["), 5);
    }

    #[test]
    fn operators_of_one_expression_are_levels() {
        // MLIR's affine parser recurses once per operator.
        assert_eq!(depth("affine_map<(d0, d1) -> (d0 + d1 * 2 - 1)>"), 5);
        assert_eq!(depth("(- - - d0)"), 4);
        assert_eq!(depth("(d0 mod 2 floordiv 3 ceildiv 4)"), 4);
        // Split by parentheses, the operators are still of one expression.
        assert_eq!(depth("((d0) + (d1) + (d0))"), 4);
        // `,` and `=` end an expression at their level.
        assert_eq!(depth("(d0 + 1, d1 + 1, d0 - 1)"), 2);
        assert_eq!(depth("{a = -1, b = -2}\n{c = -3}"), 2);
        assert_eq!(
            depth(&"%0 = arith.constant -1 : i32\n".repeat(1000)),
            1,
            "ops each ending a constant's expression"
        );
        assert_eq!(
            depth(&format!("dense<[{}1.0e-5]>", "-1.5e+3, ".repeat(1000))),
            4
        );
        // A closed bracket takes its operators with it.
        assert_eq!(depth(&"(d0 + d1 + d2) ".repeat(1000)), 3);
    }

    #[test]
    fn names_are_not_operators() {
        // SSA names may hold `-`; symbols, aliases, types and bare words
        // spelled like an operator are names.
        assert_eq!(depth("(%a-b-c-d, %e-f) ^bb-1"), 1);
        assert_eq!(depth("@mod @floordiv #mod !mod module modulo"), 0);
        assert_eq!(depth("memref<*xf32>"), 2);
    }

    #[test]
    fn reports_the_line_and_column_where_the_limit_is_crossed() {
        let text = "module {\n  x = [[[[[\n";
        let error = check(text.as_bytes(), "m.mlir", 4).unwrap_err();
        assert_eq!((error.line, error.column), (2, 10));
        assert!(
            error
                .to_string()
                .starts_with("m.mlir:2:10: error: nested more than 4 levels deep"),
            "{error}"
        );
        assert!(check(text.as_bytes(), "m.mlir", 6).is_ok());
        let error = check(b"(d0 +\n d1 + d0)", "m.mlir", 2).unwrap_err();
        assert_eq!((error.line, error.column), (2, 5));
    }

    #[test]
    fn a_deep_text_is_scanned_without_recursion() {
        let n = 1_000_000;
        let text = format!("{}{}", "[".repeat(n), "]".repeat(n));
        let error = check(text.as_bytes(), "deep.mlir", MAX_DEPTH).unwrap_err();
        assert_eq!((error.line, error.column), (1, MAX_DEPTH + 1));
        let text = format!("#m = affine_map<(d0) -> ({}d0)>", "-".repeat(n));
        assert!(check(text.as_bytes(), "neg.mlir", MAX_DEPTH).is_err());
        let text = format!("#m = affine_map<(d0) -> (d0{})>", " + d0".repeat(n));
        assert!(check(text.as_bytes(), "sum.mlir", MAX_DEPTH).is_err());
    }
}
