//! Checks of dittoc's flags, each error in the words of the command line.
//!
//! The value parsers run inside clap, whose error names the flag and the
//! value before the message returned here (`invalid value '-1' for '--block
//! <BLOCK>': …`, exit code 2); the numeric flags also take negative numbers
//! as values (`allow_negative_numbers`), which clap would otherwise read as
//! unknown flags ("unexpected argument '-1'"). The file checks run before any
//! work, so that a missing directory is said in the flag's words rather than
//! by the temporary file that cannot be made beside it at the end of a run.

use std::path::Path;

use ditto_contracts::codebook;

/// A whole number from `min` to `max`.
pub fn whole_number(s: &str, min: u64, max: u64) -> Result<u64, String> {
    let range = || format!("expected a whole number from {min} to {max}");
    match s.trim().parse::<i128>() {
        Ok(n) if n >= i128::from(min) && n <= i128::from(max) => Ok(n as u64),
        Ok(n) => Err(format!("{n} is out of range: {}", range())),
        Err(_) => Err(range()),
    }
}

/// `-O`: 0 to 3.
pub fn opt_level(s: &str) -> Result<u8, String> {
    whole_number(s, 0, 3).map(|n| n as u8)
}

/// `--seed`: any u64.
pub fn seed(s: &str) -> Result<u64, String> {
    whole_number(s, 0, u64::MAX)
}

/// `--bits` (and BITS of `--tensor-bits`): a width of the codebook format.
pub fn bits(s: &str) -> Result<u8, String> {
    s.trim()
        .parse::<u8>()
        .ok()
        .filter(|&b| codebook::check_bits(b).is_ok())
        .ok_or_else(|| "expected one of 2, 3, 4, 5, 6, 8".to_string())
}

/// The longest block `--block` takes: the quantizer's limit, rounded down to
/// a multiple of 8.
pub const MAX_BLOCK: usize = ditto_quantize::MAX_BLOCK / 8 * 8;

/// `--block` (and BLOCK of `--tensor-bits`): a positive multiple of 8, at
/// most [`MAX_BLOCK`] (a block near 2^63 overflowed the quantizer's sizes).
pub fn block(s: &str) -> Result<usize, String> {
    let expected = || format!("expected a positive multiple of 8, at most {MAX_BLOCK}");
    let n = whole_number(s, 0, u64::MAX).map_err(|_| expected())?;
    usize::try_from(n)
        .ok()
        .filter(|&b| b <= MAX_BLOCK && codebook::check_block(b).is_ok())
        .ok_or_else(expected)
}

/// `--max-error`, `--bits-avg`: a positive finite number.
pub fn positive(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err("expected a positive number".into()),
    }
}

/// `--calib-tokens`: 1 to [`crate::quantize::MAX_CALIBRATION_TOKENS`].
pub fn calib_tokens(s: &str) -> Result<usize, String> {
    whole_number(s, 1, crate::quantize::MAX_CALIBRATION_TOKENS as u64).map(|n| n as usize)
}

/// `--max-file-kib` of `dittoc datastore build`: 1 KiB to 1 GiB.
pub fn max_file_kib(s: &str) -> Result<u64, String> {
    whole_number(s, 1, 1 << 20)
}

/// `--max-total-mib` of `dittoc datastore build`: 1 MiB to 16 GiB (a store
/// holds fewer than 2^32 tokens, about 16 GiB of code).
pub fn max_total_mib(s: &str) -> Result<u64, String> {
    whole_number(s, 1, 16 << 10)
}

/// `PATTERN=BITS[:BLOCK]` of `--tensor-bits`.
pub fn tensor_bits(value: &str) -> Result<(String, u8, Option<usize>), String> {
    let (pattern, choice) = value
        .rsplit_once('=')
        .filter(|(p, _)| !p.is_empty())
        .ok_or_else(|| format!("`{value}`: expected PATTERN=BITS or PATTERN=BITS:BLOCK"))?;
    let (width, length) = match choice.split_once(':') {
        Some((bits, block)) => (bits, Some(block)),
        None => (choice, None),
    };
    let width =
        bits(width).map_err(|_| format!("`{value}`: BITS must be one of 2, 3, 4, 5, 6, 8"))?;
    let length = length
        .map(|b| {
            block(b).map_err(|_| {
                format!("`{value}`: BLOCK must be a positive multiple of 8, at most {MAX_BLOCK}")
            })
        })
        .transpose()?;
    Ok((pattern.to_string(), width, length))
}

/// `--target-cpu`: a CPU LLVM's code generator for this machine knows.
pub fn target_cpu(s: &str) -> Result<String, String> {
    match ditto_ir::host_target_knows_cpu(s) {
        Some(false) => Err(format!(
            "LLVM knows no such CPU for this machine's target \
             (`llc -mcpu=help` lists the names; this machine's is {})",
            ditto_ir::host_cpu_name()
        )),
        _ => Ok(s.to_string()),
    }
}

/// An output's directory exists: `FLAG PATH: no directory DIR` otherwise.
pub fn output_directory(flag: &str, path: &Path) -> Result<(), String> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if parent.is_dir() {
        Ok(())
    } else {
        Err(format!(
            "{flag} {}: no directory {}",
            path.display(),
            parent.display()
        ))
    }
}

/// A file a flag names can be read: `FLAG PATH: cannot read: …` otherwise.
pub fn readable_file(flag: &str, path: &Path) -> Result<(), String> {
    let fail = |why: String| format!("{flag} {}: cannot read: {why}", path.display());
    let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
    match file.metadata() {
        Ok(m) if m.is_dir() => Err(fail("it is a directory".into())),
        Ok(_) => Ok(()),
        Err(e) => Err(fail(e.to_string())),
    }
}

/// A file or directory a flag names exists: `FLAG PATH: cannot read WHAT:
/// …` otherwise.
pub fn existing(flag: &str, path: &Path, what: &str) -> Result<(), String> {
    std::fs::metadata(path)
        .map(|_| ())
        .map_err(|e| format!("{flag} {}: cannot read {what}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_in_range() {
        assert_eq!(whole_number("3", 0, 3), Ok(3));
        assert_eq!(
            whole_number("-1", 0, 3),
            Err("-1 is out of range: expected a whole number from 0 to 3".into())
        );
        assert_eq!(
            whole_number("99999999999999999999999999", 0, 3),
            Err(
                "99999999999999999999999999 is out of range: expected a whole number from 0 to 3"
                    .into()
            )
        );
        assert!(whole_number("x", 0, 3).is_err());
        assert!(whole_number("1.5", 0, 3).is_err());
        assert_eq!(seed("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn blocks_and_widths() {
        assert_eq!(block("64"), Ok(64));
        assert_eq!(block(&MAX_BLOCK.to_string()), Ok(MAX_BLOCK));
        for bad in [
            "0",
            "7",
            "-8",
            "x",
            "9223372036854775808",
            "18446744073709551616",
        ] {
            assert!(block(bad).is_err(), "{bad}");
        }
        assert_eq!(MAX_BLOCK % 8, 0);
        assert!((MAX_BLOCK + 8).to_string().parse::<usize>().is_ok());
        assert!(block(&(MAX_BLOCK + 8).to_string()).is_err());
        for good in ["2", "3", "4", "5", "6", "8"] {
            assert!(bits(good).is_ok(), "{good}");
        }
        for bad in ["0", "1", "7", "9", "255", "256", "-1", "x"] {
            assert!(bits(bad).is_err(), "{bad}");
        }
        assert_eq!(
            tensor_bits("blk.*.x=4:64"),
            Ok(("blk.*.x".to_string(), 4, Some(64)))
        );
        assert!(tensor_bits("x=4:9223372036854775808")
            .unwrap_err()
            .contains("BLOCK must be a positive multiple of 8, at most 4294967288"));
        assert!(tensor_bits("x=7")
            .unwrap_err()
            .contains("BITS must be one of 2, 3, 4, 5, 6, 8"));
    }

    #[test]
    fn bounds_are_positive_finite_numbers() {
        assert_eq!(positive("0.05"), Ok(0.05));
        for bad in ["0", "-1", "nan", "NaN", "inf", "-inf", "x", ""] {
            assert!(positive(bad).is_err(), "{bad}");
        }
        assert!(calib_tokens("0").is_err());
        assert!(calib_tokens("4611686018427387904").is_err());
        assert_eq!(calib_tokens("4096"), Ok(4096));
    }

    #[test]
    fn target_cpus_llvm_does_not_know_are_refused() {
        assert!(target_cpu("z80")
            .unwrap_err()
            .contains("LLVM knows no such CPU"));
        if cfg!(target_arch = "x86_64") {
            assert_eq!(target_cpu("x86-64-v3"), Ok("x86-64-v3".into()));
        }
    }

    #[test]
    fn files_named_by_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        assert!(output_directory("-o", &file).is_ok());
        assert!(output_directory("-o", Path::new("relative")).is_ok());
        assert_eq!(
            output_directory("-o", Path::new("/nonexistent/dir/x")),
            Err("-o /nonexistent/dir/x: no directory /nonexistent/dir".into())
        );
        assert!(readable_file("--rules", &file).is_ok());
        let dir_error = readable_file("--rules", dir.path()).unwrap_err();
        assert!(
            dir_error.ends_with("cannot read: it is a directory"),
            "{dir_error}"
        );
        assert!(readable_file("--rules", Path::new("/nonexistent/r"))
            .unwrap_err()
            .starts_with("--rules /nonexistent/r: cannot read: No such file"));
        assert!(existing("--calib", dir.path(), "it").is_ok());
        assert!(existing("--calib", Path::new("/nonexistent"), "the set")
            .unwrap_err()
            .starts_with("--calib /nonexistent: cannot read the set: No such file"));
    }
}
