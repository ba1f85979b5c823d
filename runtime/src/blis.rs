//! BLIS, as the runtime links it: the serial build Debian ships, bundled
//! into `libditto_rt.a`.
//!
//! BLIS's typed API (`blis.h`: `dim_t`, `inc_t` are int64_t in this
//! build; `trans_t`, `conj_t` are C enums, int-sized, NO_* = 0).

use std::ffi::c_int;

use crate::Error;

pub(crate) const NO_TRANSPOSE: c_int = 0;
pub(crate) const NO_CONJUGATE: c_int = 0;

extern "C" {
    pub fn bli_sgemv(
        transa: c_int,
        conjx: c_int,
        m: i64,
        n: i64,
        alpha: *const f32,
        a: *const f32,
        rs_a: i64,
        cs_a: i64,
        x: *const f32,
        incx: i64,
        beta: *const f32,
        y: *mut f32,
        incy: i64,
    );
    /// `gint_t bli_info_get_int_type_size(void)`: 64 here. Read as the
    /// low 32 bits, which are right whatever the build's gint_t.
    pub fn bli_info_get_int_type_size() -> i64;
    pub fn bli_sgemm(
        transa: c_int,
        transb: c_int,
        m: i64,
        n: i64,
        k: i64,
        alpha: *const f32,
        a: *const f32,
        rs_a: i64,
        cs_a: i64,
        b: *const f32,
        rs_b: i64,
        cs_b: i64,
        beta: *const f32,
        c: *mut f32,
        rs_c: i64,
        cs_c: i64,
    );
}

/// Fails unless the linked BLIS takes 64-bit dimensions and strides, as
/// the declarations above assume (a BLIS built with 32-bit integers,
/// picked up through DITTO_BLIS_LIB_DIR, would misread every call).
pub fn check_blis() -> Result<(), Error> {
    choose_blis_kernels();
    // SAFETY: a query without arguments.
    let bits = unsafe { bli_info_get_int_type_size() } as i32;
    if bits != 64 {
        return Err(Error::Setup(format!(
            "the BLIS linked into this executable uses {bits}-bit integers; ditto-rt needs a BLIS built with 64-bit integers"
        )));
    }
    Ok(())
}

/// BLIS picks its kernel set (sub-configuration) from the CPU model once,
/// at initialization, and falls back to its reference kernels on a CPU its
/// version does not know (Debian's BLIS 0.9 on a current AMD EPYC measured
/// 0.5× of its x86 kernels' speed). Unless the user chose one with
/// `BLIS_ARCH_TYPE`, choose from the CPU's features before the first BLIS
/// call: AMD with AVX2+FMA → zen3, Intel with AVX-512 → skx, any other
/// AVX2+FMA CPU → haswell. (Ids: BLIS's `arch_t` enum in blis.h.)
fn choose_blis_kernels() {
    if std::env::var_os("BLIS_ARCH_TYPE").is_some() {
        return;
    }
    if let Some(id) = blis_arch_for_this_cpu() {
        std::env::set_var("BLIS_ARCH_TYPE", id.to_string());
    }
}

#[cfg(target_arch = "x86_64")]
fn blis_arch_for_this_cpu() -> Option<u32> {
    const SKX: u32 = 0;
    const HASWELL: u32 = 3;
    const ZEN3: u32 = 6;
    if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
        return None;
    }
    let vendor = std::arch::x86_64::__cpuid(0);
    let amd = [vendor.ebx, vendor.edx, vendor.ecx] == [0x6874_7541, 0x6974_6e65, 0x444d_4163];
    let avx512 = is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512dq")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl");
    Some(if amd {
        ZEN3
    } else if avx512 {
        SKX
    } else {
        HASWELL
    })
}

#[cfg(not(target_arch = "x86_64"))]
fn blis_arch_for_this_cpu() -> Option<u32> {
    None
}
