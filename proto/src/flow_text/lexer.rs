//! Tokens with their byte offsets, and the error every parser returns.
//!
//! The flow language is a list of `key[=value]` tokens separated by commas (and, in the
//! head of a flow and in meters and groups, by spaces); separators inside parentheses do
//! not split. Every token keeps its byte offset in the whole input, so an error can point
//! at it.

/// A rejected flow, match, meter or group string.
///
/// `offset` is the byte offset of `token` in the parsed string, so a CLI can print a caret
/// under it (see [`ParseError::caret`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at byte {offset}: `{token}`)")]
pub struct ParseError {
    /// Byte offset of the offending token in the input.
    pub offset: usize,
    /// The offending token (may be empty when something is missing at the end); at most its
    /// first 64 bytes, then `…`.
    pub token: String,
    /// What is wrong, and how to fix it where that is known.
    pub message: String,
}

impl ParseError {
    pub(super) fn new(offset: usize, token: &str, message: impl Into<String>) -> Self {
        // An error quotes at most the first 64 bytes of its token (a 60 MiB value must not
        // come back as a 60 MiB message).
        let mut end = token.len().min(64);
        while !token.is_char_boundary(end) {
            end -= 1;
        }
        ParseError {
            offset,
            token: if end < token.len() {
                format!("{}…", &token[..end])
            } else {
                token.to_string()
            },
            message: message.into(),
        }
    }

    /// Two lines for a terminal: the input, then a caret line under the offending token.
    pub fn caret(&self, input: &str) -> String {
        let col = input
            .get(..self.offset.min(input.len()))
            .map_or(0, |s| s.chars().count());
        let width = self.token.chars().count().max(1);
        format!("{input}\n{}{}", " ".repeat(col), "^".repeat(width))
    }
}

pub(super) type Result<T> = std::result::Result<T, ParseError>;

/// A token and its byte offset in the whole input.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tok<'a> {
    pub(super) at: usize,
    pub(super) text: &'a str,
}

impl<'a> Tok<'a> {
    /// Splits `key=value` at the first `=`: (key, Some(value token)).
    pub(super) fn key_value(self) -> (&'a str, Option<Tok<'a>>) {
        match self.text.find('=') {
            Some(i) => (
                &self.text[..i],
                Some(Tok {
                    at: self.at + i + 1,
                    text: &self.text[i + 1..],
                }),
            ),
            None => (self.text, None),
        }
    }

    /// Splits at the first occurrence of `sep` (a char boundary by construction).
    pub(super) fn split_once(self, sep: &str) -> Option<(Tok<'a>, Tok<'a>)> {
        let i = self.text.find(sep)?;
        Some((
            Tok {
                at: self.at,
                text: &self.text[..i],
            },
            Tok {
                at: self.at + i + sep.len(),
                text: &self.text[i + sep.len()..],
            },
        ))
    }

    /// The same position with other text: where an error about a part of this token points.
    pub(super) fn with_text(self, text: &'a str) -> Tok<'a> {
        Tok { at: self.at, text }
    }

    pub(super) fn err(self, message: impl Into<String>) -> ParseError {
        ParseError::new(self.at, self.text, message)
    }
}

fn is_sep(c: char, with_space: bool) -> bool {
    c == ',' || (with_space && c.is_whitespace())
}

/// Splits `s` (starting at byte `base` of the input) at separators outside parentheses.
/// Empty tokens are skipped. Whitespace around tokens is trimmed.
pub(super) fn split_tokens(s: &str, base: usize, with_space: bool) -> Vec<Tok<'_>> {
    fn push<'a>(s: &'a str, base: usize, from: usize, to: usize, out: &mut Vec<Tok<'a>>) {
        if let Some(raw) = s.get(from..to) {
            let lead = raw.len() - raw.trim_start().len();
            let text = raw.trim();
            if !text.is_empty() {
                out.push(Tok {
                    at: base + from + lead,
                    text,
                });
            }
        }
    }
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            c if depth == 0 && is_sep(c, with_space) => {
                push(s, base, start, i, &mut out);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    push(s, base, start, s.len(), &mut out);
    out
}

/// The flow part of a flow string (before `actions=`, or `action=` as Open vSwitch also
/// reads it) as tokens, and the actions part.
pub(super) fn split_flow(s: &str) -> (Vec<Tok<'_>>, Option<Tok<'_>>) {
    // Find `actions=` as a token start at paren depth 0.
    let mut depth = 0usize;
    let mut token_start = true;
    for (i, c) in s.char_indices() {
        let keyword = ["actions=", "action="]
            .into_iter()
            .find(|k| s[i..].starts_with(k));
        if let (0, true, Some(keyword)) = (depth, token_start, keyword) {
            let head = split_tokens(&s[..i], 0, true);
            let value_at = i + keyword.len();
            let value = s[value_at..].trim_end();
            return (
                head,
                Some(Tok {
                    at: value_at,
                    text: value,
                }),
            );
        }
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        token_start = depth == 0 && is_sep(c, true);
    }
    (split_tokens(s, 0, true), None)
}
