//! A bound on how deeply MLIR text nests, checked before MLIR sees the text.
//!
//! MLIR's parser descends recursively into every region, attribute, type and
//! parenthesised expression, and a few thousand levels exhaust an 8 MiB stack
//! (measured with LLVM 22's parser in ditto-opt on the main thread: nested
//! `scf.execute_region` regions abort at about 3,900 levels, `module`s at
//! 3,900, arrays `[[…]]` at 6,800, dictionaries at 6,200, affine expressions
//! at 6,800, `tuple<…>` types at 15,900; about 2 KiB per region level). The
//! process then dies of a stack overflow (SIGSEGV, or an abort), which no
//! diagnostic can replace. A cheap scan of the text refuses anything nested
//! more than [`MAX_DEPTH`] levels instead: far beyond any model module (the
//! imported ones nest about 6 levels), and small enough that the parser, the
//! verifier and the passes stay within a thread's stack even where it is
//! 2 MiB (Rust's default for spawned threads).
//!
//! The scan counts `{`, `[`, `(` and `<` (each kind with its closing
//! bracket) outside string literals and `//` comments; `->`, `>=` and `<=`
//! are operators, not brackets. The depth is the sum of the four counts, at
//! least the nesting depth MLIR's parser recurses to.

/// The deepest nesting of brackets accepted.
pub const MAX_DEPTH: usize = 256;

/// Where the text first nests deeper than the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{source_name}:{line}:{column}: error: brackets nested more than {limit} deep \
     (`{{`, `[`, `(` and `<` together): refused before parsing, which would overflow \
     MLIR's recursive parser's stack"
)]
pub struct TooDeep {
    pub source_name: String,
    /// 1-based, as in MLIR's locations.
    pub line: usize,
    /// 1-based byte column, as in MLIR's locations.
    pub column: usize,
    pub limit: usize,
}

/// Checks that `text` nests at most `limit` brackets deep; `source_name`
/// names it in the error.
pub fn check(text: &[u8], source_name: &str, limit: usize) -> Result<(), TooDeep> {
    let mut open = [0usize; 4]; // { [ ( <
    let (mut line, mut line_start) = (1usize, 0usize);
    let mut i = 0;
    while i < text.len() {
        let byte = text[i];
        let next = text.get(i + 1).copied();
        match byte {
            b'\n' => {
                line += 1;
                line_start = i + 1;
            }
            b'"' => {
                // A string literal ends at its closing quote, or (an error
                // for MLIR) at the end of the line.
                i += 1;
                while i < text.len() && text[i] != b'"' && text[i] != b'\n' {
                    let escaped = text[i] == b'\\' && text.get(i + 1) != Some(&b'\n');
                    i += if escaped { 2 } else { 1 };
                }
                if i < text.len() && text[i] == b'\n' {
                    continue;
                }
            }
            b'/' if next == Some(b'/') => {
                while i < text.len() && text[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'-' | b'<' | b'>' if next == Some(if byte == b'-' { b'>' } else { b'=' }) => {
                i += 2;
                continue;
            }
            b'{' | b'[' | b'(' | b'<' => {
                let kind = match byte {
                    b'{' => 0,
                    b'[' => 1,
                    b'(' => 2,
                    _ => 3,
                };
                open[kind] += 1;
                if open.iter().sum::<usize>() > limit {
                    return Err(TooDeep {
                        source_name: source_name.to_string(),
                        line,
                        column: i - line_start + 1,
                        limit,
                    });
                }
            }
            b'}' | b']' | b')' | b'>' => {
                let kind = match byte {
                    b'}' => 0,
                    b']' => 1,
                    b')' => 2,
                    _ => 3,
                };
                open[kind] = open[kind].saturating_sub(1);
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
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
        assert_eq!(depth("// {{{{ [[[[\n{}"), 1);
        assert_eq!(depth("{} // ((((("), 1);
        // An unterminated string ends with its line.
        assert_eq!(depth("\"abc\n[[x]]"), 2);
        assert_eq!(depth("\"abc\\\n[[x]]"), 2);
        let error = check(b"\"a\\\n[[x]]", "t", 1).unwrap_err();
        assert_eq!((error.line, error.column), (2, 2));
    }

    #[test]
    fn a_stray_closing_bracket_does_not_hide_depth() {
        // Closing brackets of another kind, or more than were opened, take
        // nothing off the depth.
        assert_eq!(depth(">>>> ]]]] [[[["), 4);
        assert_eq!(depth("{{{{ > ] ) [[[["), 8);
    }

    #[test]
    fn reports_the_line_and_column_where_the_limit_is_crossed() {
        let text = "module {\n  x = [[[[[\n";
        let error = check(text.as_bytes(), "m.mlir", 4).unwrap_err();
        assert_eq!((error.line, error.column), (2, 10));
        assert!(
            error
                .to_string()
                .starts_with("m.mlir:2:10: error: brackets nested more than 4 deep"),
            "{error}"
        );
        assert!(check(text.as_bytes(), "m.mlir", 6).is_ok());
    }

    #[test]
    fn a_deep_text_is_scanned_without_recursion() {
        let n = 1_000_000;
        let text = format!("{}{}", "[".repeat(n), "]".repeat(n));
        let error = check(text.as_bytes(), "deep.mlir", MAX_DEPTH).unwrap_err();
        assert_eq!((error.line, error.column), (1, MAX_DEPTH + 1));
    }
}
