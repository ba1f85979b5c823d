//! A small s-expression reader that remembers where each expression starts,
//! so that rule-file errors can name a line and column.

use std::fmt;

/// A position in a text: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// An s-expression: an atom or a parenthesized list.
#[derive(Debug, Clone, PartialEq)]
pub enum Sexp {
    /// A run of characters other than whitespace, `(`, `)` and `;`.
    Atom(String, Pos),
    /// `( … )`.
    List(Vec<Sexp>, Pos),
}

impl Sexp {
    /// Where this expression starts.
    pub fn pos(&self) -> Pos {
        match self {
            Sexp::Atom(_, p) | Sexp::List(_, p) => *p,
        }
    }

    /// The atom's text, if this is an atom.
    pub fn atom(&self) -> Option<&str> {
        match self {
            Sexp::Atom(s, _) => Some(s),
            Sexp::List(..) => None,
        }
    }
}

impl fmt::Display for Sexp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sexp::Atom(s, _) => f.write_str(s),
            Sexp::List(items, _) => {
                f.write_str("(")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str(")")
            }
        }
    }
}

/// A syntax error: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// Where the problem is.
    pub pos: Pos,
    /// What it is.
    pub message: String,
}

/// The deepest nesting of lists a text may have. Rules are a few levels
/// deep; every pass over an expression (building patterns, printing,
/// dropping) recurses once per level, so a bound keeps a hostile file from
/// overflowing the stack.
pub const MAX_DEPTH: usize = 256;

/// Reads every top-level expression of `text`. `;` starts a comment that runs
/// to the end of the line. Lists nested deeper than [`MAX_DEPTH`] are an error.
pub fn parse_all(text: &str) -> Result<Vec<Sexp>, SyntaxError> {
    let mut reader = Reader {
        chars: text.chars().peekable(),
        pos: Pos { line: 1, column: 1 },
    };
    let mut out = Vec::new();
    // Stack of open lists: their items so far and where they opened.
    let mut stack: Vec<(Vec<Sexp>, Pos)> = Vec::new();
    while let Some((tok, pos)) = reader.next_token() {
        let done = match tok {
            Token::Open => {
                if stack.len() == MAX_DEPTH {
                    return Err(SyntaxError {
                        pos,
                        message: format!("lists nested deeper than {MAX_DEPTH} levels"),
                    });
                }
                stack.push((Vec::new(), pos));
                continue;
            }
            Token::Close => match stack.pop() {
                Some((items, open)) => Sexp::List(items, open),
                None => {
                    return Err(SyntaxError {
                        pos,
                        message: "unexpected `)` with no matching `(`".into(),
                    })
                }
            },
            Token::Atom(s) => Sexp::Atom(s, pos),
        };
        match stack.last_mut() {
            Some((items, _)) => items.push(done),
            None => out.push(done),
        }
    }
    if let Some((_, open)) = stack.last() {
        return Err(SyntaxError {
            pos: *open,
            message: "`(` is never closed".into(),
        });
    }
    Ok(out)
}

enum Token {
    Open,
    Close,
    Atom(String),
}

struct Reader<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    pos: Pos,
}

impl Reader<'_> {
    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.pos.line += 1;
            self.pos.column = 1;
        } else {
            self.pos.column += 1;
        }
        Some(c)
    }

    fn next_token(&mut self) -> Option<(Token, Pos)> {
        loop {
            let c = *self.chars.peek()?;
            if c.is_whitespace() {
                self.bump();
            } else if c == ';' {
                while self.chars.peek().is_some_and(|&c| c != '\n') {
                    self.bump();
                }
            } else {
                break;
            }
        }
        let pos = self.pos;
        match self.bump()? {
            '(' => Some((Token::Open, pos)),
            ')' => Some((Token::Close, pos)),
            first => {
                let mut s = String::from(first);
                while let Some(&c) = self.chars.peek() {
                    if c.is_whitespace() || c == '(' || c == ')' || c == ';' {
                        break;
                    }
                    s.push(c);
                    self.bump();
                }
                Some((Token::Atom(s), pos))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lists_atoms_comments_and_positions() {
        let text = ";; comment\n(rule a ; trailing\n  (f ?x) 1)\nfoo";
        let all = parse_all(text).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].to_string(), "(rule a (f ?x) 1)");
        assert_eq!(all[0].pos(), Pos { line: 2, column: 1 });
        let Sexp::List(items, _) = &all[0] else {
            panic!()
        };
        assert_eq!(items[2].pos(), Pos { line: 3, column: 3 });
        assert_eq!(all[1].atom(), Some("foo"));
        assert_eq!(all[1].pos(), Pos { line: 4, column: 1 });
    }

    #[test]
    fn refuses_nesting_deeper_than_the_limit() {
        let deep = |n: usize| format!("{}{}", "(".repeat(n), ")".repeat(n));
        assert!(parse_all(&deep(MAX_DEPTH)).is_ok());
        let error = parse_all(&deep(1_000_000)).unwrap_err();
        assert_eq!(
            error.pos,
            Pos {
                line: 1,
                column: MAX_DEPTH + 1
            }
        );
        assert!(
            error.message.contains("nested deeper than 256"),
            "{}",
            error.message
        );
    }

    #[test]
    fn reports_unbalanced_parentheses() {
        let e = parse_all("(a\n  (b c)").unwrap_err();
        assert_eq!(e.pos, Pos { line: 1, column: 1 });
        assert!(e.message.contains("never closed"));
        let e = parse_all("(a)\n  )").unwrap_err();
        assert_eq!(e.pos, Pos { line: 2, column: 3 });
        assert!(e.message.contains("unexpected `)`"));
    }
}
