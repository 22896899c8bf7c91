//! An iterative bencode decoder that keeps every value's exact byte span.
//!
//! The input is parsed once into a flat token array (one allocation, bounded by
//! [`DecodeLimits::max_values`]); [`Node`] is a cheap view into it. No recursion, so no input
//! can overflow the stack, and depth is limited separately by [`DecodeLimits::max_depth`].

use crate::error::{BencodeError, BencodeErrorKind};

use super::node::{Document, Kind, Token};

/// Size, depth and count limits for one decode. Checked before anything is allocated for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest input accepted, in bytes.
    pub max_input: usize,
    /// Deepest nesting of lists and dictionaries.
    pub max_depth: usize,
    /// Most values (integers, strings, lists, dictionaries, keys included) in one input.
    pub max_values: usize,
}

impl DecodeLimits {
    /// Limits for a `.torrent` file or an info dictionary: 64 MiB holds the hashes of the
    /// largest torrent shoal accepts (see `torrent::MAX_PIECES`) with room to spare.
    pub const TORRENT: DecodeLimits = DecodeLimits {
        max_input: 64 << 20,
        max_depth: 100,
        max_values: 4_000_000,
    };
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self::TORRENT
    }
}

/// How strict a decode is about the canonical form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DecodeOptions {
    pub limits: DecodeLimits,
    /// Accept dictionary keys in any order (duplicates are still rejected). Real `.torrent`
    /// files exist with unsorted info dictionaries; since the info-hash is taken over the bytes
    /// as they stand, accepting them is safe. Off by default: canonical bencode only.
    pub allow_unsorted_keys: bool,
    /// Accept ASCII whitespace (a text editor's newline) after the top-level value.
    pub allow_trailing_whitespace: bool,
}

impl DecodeOptions {
    /// What `.torrent` files and info dictionaries are parsed with: what libtorrent accepts,
    /// minus anything ambiguous (duplicate keys, non-canonical integers, trailing garbage).
    pub const TORRENT_FILE: DecodeOptions = DecodeOptions {
        limits: DecodeLimits::TORRENT,
        allow_unsorted_keys: true,
        allow_trailing_whitespace: true,
    };
}

/// Decodes canonical bencode with the default limits.
pub fn decode(input: &[u8]) -> Result<Document<'_>, BencodeError> {
    decode_with(input, DecodeOptions::default())
}

/// Decodes bencode with explicit options.
pub fn decode_with(input: &[u8], options: DecodeOptions) -> Result<Document<'_>, BencodeError> {
    Parser::new(input, options)?.run()
}

/// An open list or dictionary while parsing.
struct Frame {
    token: usize,
    is_dict: bool,
    /// For dictionaries: the next item is a key.
    expect_key: bool,
    /// Token index of the previous key, to check order.
    last_key: Option<usize>,
    /// Keys were seen out of order (allowed by the options): check duplicates at the close.
    unsorted: bool,
}

struct Parser<'a> {
    input: &'a [u8],
    options: DecodeOptions,
    pos: usize,
    tokens: Vec<Token>,
    stack: Vec<Frame>,
}

impl<'a> Parser<'a> {
    fn new(input: &'a [u8], options: DecodeOptions) -> Result<Self, BencodeError> {
        let limit = options.limits.max_input.min(u32::MAX as usize - 1);
        if input.len() > limit {
            return Err(BencodeError {
                offset: 0,
                kind: BencodeErrorKind::TooLarge {
                    len: input.len(),
                    limit,
                },
            });
        }
        Ok(Self {
            input,
            options,
            pos: 0,
            tokens: Vec::new(),
            stack: Vec::new(),
        })
    }

    fn err(&self, offset: usize, kind: BencodeErrorKind) -> BencodeError {
        BencodeError { offset, kind }
    }

    fn run(mut self) -> Result<Document<'a>, BencodeError> {
        loop {
            let Some(&byte) = self.input.get(self.pos) else {
                return Err(self.err(self.pos, BencodeErrorKind::UnexpectedEnd));
            };
            if byte == b'e' && !self.stack.is_empty() {
                self.close()?;
            } else {
                self.open_value(byte)?;
            }
            if self.stack.is_empty() {
                break;
            }
        }
        self.check_trailing()?;
        Ok(Document {
            input: self.input,
            tokens: self.tokens,
        })
    }

    fn check_trailing(&self) -> Result<(), BencodeError> {
        let rest = &self.input[self.pos..];
        let tolerated =
            self.options.allow_trailing_whitespace && rest.iter().all(u8::is_ascii_whitespace);
        if rest.is_empty() || tolerated {
            Ok(())
        } else {
            Err(self.err(
                self.pos,
                BencodeErrorKind::TrailingBytes { count: rest.len() },
            ))
        }
    }

    fn push_token(
        &mut self,
        kind: Kind,
        start: usize,
        payload: usize,
    ) -> Result<usize, BencodeError> {
        if self.tokens.len() >= self.options.limits.max_values {
            return Err(self.err(
                start,
                BencodeErrorKind::TooManyValues {
                    limit: self.options.limits.max_values,
                },
            ));
        }
        // Offsets fit in u32: the input length was checked against u32::MAX in `new`.
        self.tokens.push(Token {
            kind,
            start: start as u32,
            end: start as u32,
            payload: payload as u32,
            next: 0,
        });
        Ok(self.tokens.len() - 1)
    }

    fn open_value(&mut self, byte: u8) -> Result<(), BencodeError> {
        let start = self.pos;
        let expecting_key = self.stack.last().is_some_and(|f| f.is_dict && f.expect_key);
        if expecting_key && !byte.is_ascii_digit() {
            return Err(self.err(start, BencodeErrorKind::KeyNotString));
        }
        match byte {
            b'i' => {
                let end = self.parse_int()?;
                let index = self.push_token(Kind::Int, start, start)?;
                self.finish_leaf(index, end);
            }
            b'0'..=b'9' => {
                let (payload, end) = self.parse_string_header()?;
                let index = self.push_token(Kind::Bytes, start, payload)?;
                self.finish_leaf(index, end);
                if expecting_key {
                    self.check_key_order(index)?;
                }
            }
            b'l' | b'd' => {
                if self.stack.len() >= self.options.limits.max_depth {
                    return Err(self.err(
                        start,
                        BencodeErrorKind::TooDeep {
                            limit: self.options.limits.max_depth,
                        },
                    ));
                }
                let is_dict = byte == b'd';
                let kind = if is_dict { Kind::Dict } else { Kind::List };
                let token = self.push_token(kind, start, start)?;
                self.stack.push(Frame {
                    token,
                    is_dict,
                    expect_key: true,
                    last_key: None,
                    unsorted: false,
                });
                self.pos += 1;
                return Ok(());
            }
            other => return Err(self.err(start, BencodeErrorKind::UnexpectedByte(other))),
        }
        self.value_done();
        Ok(())
    }

    fn finish_leaf(&mut self, index: usize, end: usize) {
        let token = &mut self.tokens[index];
        token.end = end as u32;
        token.next = index as u32 + 1;
        self.pos = end;
    }

    /// A value (leaf or container) just ended: a dictionary now expects the other half.
    fn value_done(&mut self) {
        if let Some(frame) = self.stack.last_mut() {
            if frame.is_dict {
                frame.expect_key = !frame.expect_key;
            }
        }
    }

    fn close(&mut self) -> Result<(), BencodeError> {
        let Some(frame) = self.stack.pop() else {
            return Err(self.err(self.pos, BencodeErrorKind::UnexpectedByte(b'e')));
        };
        if frame.is_dict && !frame.expect_key {
            return Err(self.err(self.pos, BencodeErrorKind::MissingValue));
        }
        if frame.unsorted {
            self.check_no_duplicate_keys(frame.token)?;
        }
        self.pos += 1;
        let next = self.tokens.len() as u32;
        let token = &mut self.tokens[frame.token];
        token.end = self.pos as u32;
        token.next = next;
        self.value_done();
        Ok(())
    }

    fn key_bytes(&self, index: usize) -> &'a [u8] {
        let t = self.tokens[index];
        &self.input[t.payload as usize..t.end as usize]
    }

    fn check_key_order(&mut self, key: usize) -> Result<(), BencodeError> {
        let allow_unsorted = self.options.allow_unsorted_keys;
        let new = self.key_bytes(key);
        let offset = self.tokens[key].start as usize;
        let previous = self.stack.last().and_then(|f| f.last_key);
        if let Some(prev) = previous {
            match self.key_bytes(prev).cmp(new) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => {
                    return Err(self.err(offset, BencodeErrorKind::DuplicateKey));
                }
                std::cmp::Ordering::Greater if allow_unsorted => {
                    if let Some(frame) = self.stack.last_mut() {
                        frame.unsorted = true;
                    }
                }
                std::cmp::Ordering::Greater => {
                    return Err(self.err(offset, BencodeErrorKind::UnsortedKey));
                }
            }
        }
        if let Some(frame) = self.stack.last_mut() {
            frame.last_key = Some(key);
        }
        Ok(())
    }

    /// For a dictionary whose keys came out of order: sort a copy of its keys and look for
    /// neighbours that are equal.
    fn check_no_duplicate_keys(&self, dict: usize) -> Result<(), BencodeError> {
        let mut keys: Vec<(&[u8], usize)> = Vec::new();
        let mut index = dict + 1;
        while index < self.tokens.len() {
            let key = self.tokens[index];
            keys.push((self.key_bytes(index), key.start as usize));
            let value = key.next as usize;
            if value >= self.tokens.len() {
                break;
            }
            index = self.tokens[value].next as usize;
        }
        keys.sort_unstable();
        match keys.windows(2).find(|w| w[0].0 == w[1].0) {
            Some(w) => Err(self.err(w[0].1.max(w[1].1), BencodeErrorKind::DuplicateKey)),
            None => Ok(()),
        }
    }

    /// Parses `i<digits>e` at `self.pos`; returns the offset just past the `e`.
    fn parse_int(&self) -> Result<usize, BencodeError> {
        let start = self.pos;
        let mut pos = start + 1;
        let negative = self.input.get(pos) == Some(&b'-');
        if negative {
            pos += 1;
        }
        let digits_start = pos;
        let mut value: i64 = 0;
        loop {
            match self.input.get(pos) {
                None => return Err(self.err(pos, BencodeErrorKind::UnexpectedEnd)),
                Some(b'e') => break,
                Some(&d @ b'0'..=b'9') => {
                    let digit = i64::from(d - b'0');
                    // Accumulate negatively so that i64::MIN fits.
                    value = value
                        .checked_mul(10)
                        .and_then(|v| v.checked_sub(digit))
                        .ok_or_else(|| self.err(start, BencodeErrorKind::IntegerOverflow))?;
                    pos += 1;
                }
                Some(&other) => return Err(self.err(pos, BencodeErrorKind::UnexpectedByte(other))),
            }
        }
        let digits = &self.input[digits_start..pos];
        if digits.is_empty() {
            return Err(self.err(start, BencodeErrorKind::EmptyInteger));
        }
        if digits[0] == b'0' && digits.len() > 1 {
            return Err(self.err(digits_start, BencodeErrorKind::LeadingZero));
        }
        if negative && value == 0 {
            return Err(self.err(start, BencodeErrorKind::NegativeZero));
        }
        if !negative && value == i64::MIN {
            return Err(self.err(start, BencodeErrorKind::IntegerOverflow));
        }
        Ok(pos + 1)
    }

    /// Parses `<len>:` at `self.pos`; returns (payload start, end of the string).
    fn parse_string_header(&self) -> Result<(usize, usize), BencodeError> {
        let start = self.pos;
        let mut pos = start;
        let mut len: u64 = 0;
        loop {
            match self.input.get(pos) {
                None => return Err(self.err(pos, BencodeErrorKind::UnexpectedEnd)),
                Some(b':') => break,
                Some(&d @ b'0'..=b'9') => {
                    len = len
                        .checked_mul(10)
                        .and_then(|v| v.checked_add(u64::from(d - b'0')))
                        .ok_or_else(|| self.err(start, BencodeErrorKind::IntegerOverflow))?;
                    pos += 1;
                }
                Some(&other) => return Err(self.err(pos, BencodeErrorKind::UnexpectedByte(other))),
            }
        }
        if self.input[start] == b'0' && pos - start > 1 {
            return Err(self.err(start, BencodeErrorKind::LengthLeadingZero));
        }
        let payload = pos + 1;
        let remaining = (self.input.len() - payload) as u64;
        if len > remaining {
            return Err(self.err(start, BencodeErrorKind::LengthPastEnd { len }));
        }
        Ok((payload, payload + len as usize))
    }
}
