//! The read-only view of a decoded document: [`Document`], [`Node`] and their iterators.

use std::ops::Range;

use super::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Int,
    Bytes,
    List,
    Dict,
}

/// One value in the flat token array. Offsets fit in u32 because inputs are capped well below
/// 4 GiB by [`super::DecodeLimits::max_input`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Token {
    pub(super) kind: Kind,
    /// Span of the whole encoded value.
    pub(super) start: u32,
    pub(super) end: u32,
    /// For byte strings, where the payload starts (after the `:`).
    pub(super) payload: u32,
    /// Index of the token after this value and all its children.
    pub(super) next: u32,
}

/// A decoded bencode document borrowing from its input.
#[derive(Debug, Clone)]
pub struct Document<'a> {
    pub(super) input: &'a [u8],
    pub(super) tokens: Vec<Token>,
}

impl<'a> Document<'a> {
    /// The top-level value.
    pub fn root(&self) -> Node<'_, 'a> {
        Node {
            doc: self,
            index: 0,
        }
    }

    /// The input this document was decoded from.
    pub fn input(&self) -> &'a [u8] {
        self.input
    }
}

/// A view of one value in a [`Document`].
#[derive(Debug, Clone, Copy)]
pub struct Node<'d, 'a> {
    doc: &'d Document<'a>,
    index: usize,
}

impl<'d, 'a> Node<'d, 'a> {
    fn token(&self) -> Token {
        self.doc.tokens[self.index]
    }

    /// The exact byte range this value occupies in the input.
    pub fn span(&self) -> Range<usize> {
        let t = self.token();
        t.start as usize..t.end as usize
    }

    /// The exact encoded bytes of this value, as they appear in the input.
    pub fn raw(&self) -> &'a [u8] {
        &self.doc.input[self.span()]
    }

    pub fn as_int(&self) -> Option<i64> {
        let t = self.token();
        if t.kind != Kind::Int {
            return None;
        }
        // The digits were validated (and checked for overflow) while decoding.
        let digits = &self.doc.input[t.start as usize + 1..t.end as usize - 1];
        std::str::from_utf8(digits).ok()?.parse().ok()
    }

    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        let t = self.token();
        (t.kind == Kind::Bytes).then(|| &self.doc.input[t.payload as usize..t.end as usize])
    }

    /// The byte string as UTF-8, if it is a byte string and valid UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        std::str::from_utf8(self.as_bytes()?).ok()
    }

    pub fn is_list(&self) -> bool {
        self.token().kind == Kind::List
    }

    pub fn is_dict(&self) -> bool {
        self.token().kind == Kind::Dict
    }

    /// The items of a list, or `None` if this is not a list.
    pub fn as_list(&self) -> Option<Children<'d, 'a>> {
        self.is_list().then(|| self.children())
    }

    /// The `(key, value)` entries of a dictionary in input order, or `None`.
    pub fn as_dict(&self) -> Option<DictEntries<'d, 'a>> {
        self.is_dict().then(|| DictEntries {
            inner: self.children(),
        })
    }

    /// The value under `key`, if this is a dictionary that has it.
    pub fn get(&self, key: &[u8]) -> Option<Node<'d, 'a>> {
        self.as_dict()?.find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    fn children(&self) -> Children<'d, 'a> {
        let t = self.token();
        Children {
            doc: self.doc,
            next: self.index + 1,
            end: t.next as usize,
        }
    }

    /// Copies this value into an owned [`Value`]. Depth is bounded by the decode limits.
    pub fn to_value(&self) -> Value {
        match self.token().kind {
            Kind::Int => Value::Int(self.as_int().unwrap_or_default()),
            Kind::Bytes => Value::Bytes(self.as_bytes().unwrap_or_default().to_vec()),
            Kind::List => Value::List(self.children().map(|n| n.to_value()).collect()),
            Kind::Dict => Value::Dict(
                DictEntries {
                    inner: self.children(),
                }
                .map(|(k, v)| (k.to_vec(), v.to_value()))
                .collect(),
            ),
        }
    }
}

/// Iterator over the direct children of a list or dictionary.
#[derive(Debug, Clone)]
pub struct Children<'d, 'a> {
    doc: &'d Document<'a>,
    next: usize,
    end: usize,
}

impl<'d, 'a> Iterator for Children<'d, 'a> {
    type Item = Node<'d, 'a>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.end {
            return None;
        }
        let node = Node {
            doc: self.doc,
            index: self.next,
        };
        self.next = self.doc.tokens[self.next].next as usize;
        Some(node)
    }
}

/// Iterator over a dictionary's entries in input order.
#[derive(Debug, Clone)]
pub struct DictEntries<'d, 'a> {
    inner: Children<'d, 'a>,
}

impl<'d, 'a> Iterator for DictEntries<'d, 'a> {
    type Item = (&'a [u8], Node<'d, 'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let key = self.inner.next()?;
        let value = self.inner.next()?;
        Some((key.as_bytes().unwrap_or_default(), value))
    }
}
