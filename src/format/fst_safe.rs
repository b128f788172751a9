//! A bounds-checked reader for the `fst` crate's map bytes (format version 3, as
//! `fst::MapBuilder` 0.4.7 writes them), for exact-key lookups and a full in-order
//! traversal.
//!
//! `fst::Map::get` trusts its bytes: on a damaged or hostile FST it indexes out of
//! bounds or fails an assertion, i.e. panics. This module decodes the same nodes the
//! same way as `fst-0.4.7/src/raw/node.rs`, but every read goes through `get`, every
//! offset through `checked_*` arithmetic, every packed integer width is checked to be
//! 1..=8 and every node address to lie inside the node area; anything else is a
//! [`Damaged`] error. No `unsafe`, no panics.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! version u64 (3) | type u64 | nodes ... | key count u64 | root address u64 | CRC32C u32
//! ```
//!
//! A node is addressed by its *last* byte (the state byte) and is decoded backwards
//! from it. Address 0 is the final node without transitions or output (never written).
//! Every transition points to a strictly smaller address (it is stored as a delta
//! below the node's first byte), so walks always terminate: a lookup decodes at most
//! `key.len() + 1` nodes. A lookup is a [`Walk`] advanced one node at a time, so that
//! the batch path can run several together ([`walk_interleaved`]) and overlap their
//! memory misses.
//!
//! Node kinds, by the two high bits of the state byte:
//! - `11` one transition to the node compiled just before this one ("next"), no output;
//!   the low 6 bits are a common-input index, 0 meaning the input byte precedes the
//!   state byte;
//! - `10` one transition with an explicit (delta) address and an optional output:
//!   `[output (osize)] [delta (tsize)] [pack sizes] [input?] state`;
//! - `0f` any number of transitions (0..=256), final if `f` is set, the count in the
//!   low 6 bits or (when 0) in the byte before the state byte (1 there meaning 256):
//!   `[final output] [outputs, last first] [deltas, last first] [inputs, last first]
//!   [256-byte index when more than 32 transitions] [pack sizes] [count?] state`.

use std::fmt;

/// FST format version this reader understands (the one `fst` 0.4.7 writes).
pub const FST_VERSION: u64 = 3;
/// Longest key [`Stream`] walks into; deeper paths are reported as damage.
pub const MAX_KEY_LEN: usize = 1 << 16;

/// Header: version and type.
const HEADER_LEN: usize = 16;
/// Trailer: key count, root address and CRC32C.
const TRAILER_LEN: usize = 20;
/// The smallest FST: header and trailer around an empty root.
const MIN_LEN: usize = HEADER_LEN + TRAILER_LEN;
/// Address of the final, transition-less, output-less node (never stored).
const EMPTY_ADDRESS: usize = 0;
/// Nodes with more transitions than this carry a 256-byte input index.
const TRANS_INDEX_THRESHOLD: usize = 32;
/// Size of that index.
const TRANS_INDEX_LEN: usize = 256;

/// The bytes a common-input index `1..=63` stands for (`COMMON_INPUTS_INV[..63]` in
/// `fst-0.4.7/src/raw/common_inputs.rs`).
const COMMON_INPUTS_INV: [u8; 63] = *b"te/oasripcnw.hlm-du012g=:bf3y5&_4v9678k%?xCDASFIBEjPTzRNM+LOqHG";

/// Why FST bytes cannot be read: they are damaged (or were not written by
/// `fst::MapBuilder`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Damaged(pub &'static str);

impl fmt::Display for Damaged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Damaged {}

type Result<T> = std::result::Result<T, Damaged>;

#[inline]
fn sub(a: usize, b: usize) -> Result<usize> {
    a.checked_sub(b).ok_or(Damaged("node runs before the start of the FST"))
}

#[inline]
fn byte(data: &[u8], at: usize) -> Result<u8> {
    data.get(at).copied().ok_or(Damaged("node byte out of bounds"))
}

fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let b = bytes.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(b.try_into().ok()?))
}

/// `bytes::unpack_uint`: a little-endian integer of `nbytes` (1..=8) bytes at `at`.
#[inline]
fn unpack_uint(data: &[u8], at: usize, nbytes: usize) -> Result<u64> {
    if !(1..=8).contains(&nbytes) {
        return Err(Damaged("packed integer width outside 1..=8"));
    }
    let end = at.checked_add(nbytes).ok_or(Damaged("packed integer out of bounds"))?;
    let b = data.get(at..end).ok_or(Damaged("packed integer out of bounds"))?;
    Ok(b.iter().rev().fold(0u64, |n, &x| (n << 8) | u64::from(x)))
}

/// `node::unpack_delta`: a transition address stored as a delta below `node_end`
/// (0 standing for [`EMPTY_ADDRESS`]).
#[inline]
fn unpack_delta(data: &[u8], at: usize, tsize: usize, node_end: usize) -> Result<usize> {
    let delta = unpack_uint(data, at, tsize)?;
    if delta == 0 {
        return Ok(EMPTY_ADDRESS);
    }
    usize::try_from(delta)
        .ok()
        .and_then(|d| node_end.checked_sub(d))
        .ok_or(Damaged("transition address before the start of the FST"))
}

#[inline]
fn common_input(idx: u8) -> Option<u8> {
    COMMON_INPUTS_INV.get(usize::from(idx).checked_sub(1)?).copied()
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    /// Address 0: final, no transitions, no output.
    EmptyFinal,
    /// One transition to the node just below this one, output 0.
    OneTransNext,
    /// One transition, explicit address and output.
    OneTrans,
    /// 0..=256 transitions, maybe final.
    AnyTrans,
}

/// A decoded node header (`raw::node::Node`): enough to find and read transitions.
#[derive(Clone, Copy, Debug)]
struct Node<'a> {
    /// The FST bytes up to and including the state byte (`&fst[..=start]`).
    data: &'a [u8],
    kind: Kind,
    /// Address of the state byte.
    start: usize,
    /// Address of the node's first byte; deltas count down from here.
    end: usize,
    is_final: bool,
    ntrans: usize,
    /// Transition address width.
    tsize: usize,
    /// Output width (0: no outputs).
    osize: usize,
    /// Bytes between the pack-sizes byte and the state byte: the explicit input of a
    /// one-transition node, or the transition count of an any-transitions node.
    extra: usize,
    /// The single input of a one-transition node.
    input: u8,
}

impl<'a> Node<'a> {
    /// `Node::new`: decodes the node whose state byte is at `addr` of `nodes`.
    #[inline]
    fn new(nodes: &'a [u8], addr: usize) -> Result<Node<'a>> {
        let mut node = Node {
            data: &[],
            kind: Kind::EmptyFinal,
            start: EMPTY_ADDRESS,
            end: EMPTY_ADDRESS,
            is_final: true,
            ntrans: 0,
            tsize: 0,
            osize: 0,
            extra: 0,
            input: 0,
        };
        if addr == EMPTY_ADDRESS {
            return Ok(node);
        }
        let end_excl = addr.checked_add(1).ok_or(Damaged("node address out of bounds"))?;
        let data = nodes.get(..end_excl).ok_or(Damaged("node address out of bounds"))?;
        let state = byte(data, addr)?;
        node.data = data;
        node.start = addr;
        node.is_final = false;
        match state >> 6 {
            0b11 | 0b10 => {
                let common = common_input(state & 0b0011_1111);
                node.extra = usize::from(common.is_none());
                node.input = match common {
                    Some(b) => b,
                    None => byte(data, sub(addr, 1)?)?,
                };
                node.ntrans = 1;
                if state >> 6 == 0b11 {
                    node.kind = Kind::OneTransNext;
                    node.end = sub(addr, node.extra)?;
                } else {
                    node.kind = Kind::OneTrans;
                    let sizes = byte(data, sub(sub(addr, node.extra)?, 1)?)?;
                    node.tsize = usize::from(sizes >> 4);
                    node.osize = usize::from(sizes & 0b1111);
                    node.end = sub(sub(sub(sub(addr, node.extra)?, 1)?, node.tsize)?, node.osize)?;
                }
            }
            _ => {
                node.kind = Kind::AnyTrans;
                node.is_final = state & 0b0100_0000 != 0;
                let n = state & 0b0011_1111;
                if n != 0 {
                    node.ntrans = usize::from(n);
                } else {
                    node.extra = 1;
                    // 1 is never a real count here (one transition fits the state byte).
                    node.ntrans = match byte(data, sub(addr, 1)?)? {
                        1 => 256,
                        n => usize::from(n),
                    };
                }
                let sizes = byte(data, sub(sub(addr, node.extra)?, 1)?)?;
                node.tsize = usize::from(sizes >> 4);
                node.osize = usize::from(sizes & 0b1111);
                // ntrans <= 256 and both sizes <= 15: these products cannot overflow.
                let final_osize = if node.is_final { node.osize } else { 0 };
                let outputs = node.ntrans * node.osize + final_osize;
                node.end = sub(sub(node.trans_start()?, node.total_trans_size())?, outputs)?;
            }
        }
        Ok(node)
    }

    /// Size of the 256-byte input index (0 when absent).
    #[inline]
    fn index_size(&self) -> usize {
        if self.ntrans > TRANS_INDEX_THRESHOLD { TRANS_INDEX_LEN } else { 0 }
    }

    /// Inputs, addresses and index of an any-transitions node.
    #[inline]
    fn total_trans_size(&self) -> usize {
        self.ntrans + self.ntrans * self.tsize + self.index_size()
    }

    /// Address just past the last input-side byte of an any-transitions node: the state
    /// byte minus the count byte and the pack-sizes byte.
    #[inline]
    fn trans_start(&self) -> Result<usize> {
        sub(sub(self.start, self.extra)?, 1)
    }

    /// `Node::find_input`: the index of the transition on `b`.
    #[inline]
    fn find_input(&self, b: u8) -> Result<Option<usize>> {
        match self.kind {
            Kind::EmptyFinal => Ok(None),
            Kind::OneTransNext | Kind::OneTrans => Ok((self.input == b).then_some(0)),
            Kind::AnyTrans if self.ntrans > TRANS_INDEX_THRESHOLD => {
                let start = sub(self.trans_start()?, TRANS_INDEX_LEN)?;
                let i = usize::from(byte(self.data, start + usize::from(b))?);
                if i >= self.ntrans {
                    return Ok(None);
                }
                // The index must agree with the input list.
                if self.any_input(i)? != b {
                    return Err(Damaged("transition index disagrees with the inputs"));
                }
                Ok(Some(i))
            }
            Kind::AnyTrans => {
                let start = sub(self.trans_start()?, self.ntrans)?;
                let inputs = self.data.get(start..start + self.ntrans).ok_or(Damaged("node byte out of bounds"))?;
                Ok(inputs.iter().position(|&x| x == b).map(|p| self.ntrans - p - 1))
            }
        }
    }

    /// Input byte of transition `i` of an any-transitions node.
    #[inline]
    fn any_input(&self, i: usize) -> Result<u8> {
        let at = sub(sub(sub(self.trans_start()?, self.index_size())?, i)?, 1)?;
        byte(self.data, at)
    }

    /// `Node::transition`: input, output and target address of transition `i`.
    #[inline]
    fn transition(&self, i: usize) -> Result<(u8, u64, usize)> {
        if i >= self.ntrans {
            return Err(Damaged("transition index out of range"));
        }
        match self.kind {
            Kind::EmptyFinal => Err(Damaged("transition index out of range")),
            Kind::OneTransNext => Ok((self.input, 0, sub(self.end, 1)?)),
            Kind::OneTrans => {
                let out = if self.osize == 0 { 0 } else { unpack_uint(self.data, self.end, self.osize)? };
                let at = sub(sub(sub(self.start, self.extra)?, 1)?, self.tsize)?;
                Ok((self.input, out, unpack_delta(self.data, at, self.tsize, self.end)?))
            }
            Kind::AnyTrans => {
                let input = self.any_input(i)?;
                let at = sub(sub(self.trans_start()?, self.index_size() + self.ntrans)?, (i + 1) * self.tsize)?;
                let addr = unpack_delta(self.data, at, self.tsize, self.end)?;
                let out = if self.osize == 0 {
                    0
                } else {
                    let at = sub(sub(self.trans_start()?, self.total_trans_size())?, (i + 1) * self.osize)?;
                    unpack_uint(self.data, at, self.osize)?
                };
                Ok((input, out, addr))
            }
        }
    }

    /// `Node::final_output`: the output added when a key ends here (final nodes only).
    #[inline]
    fn final_output(&self) -> Result<u64> {
        if !self.is_final || self.osize == 0 || !matches!(self.kind, Kind::AnyTrans) {
            return Ok(0);
        }
        // The final output is the first bytes of the node.
        unpack_uint(self.data, self.end, self.osize)
    }
}

/// The trailer of an FST, checked in constant time: what lookups and scans start from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FstMeta {
    root: usize,
    len: u64,
    /// Length of the FST bytes it was read from.
    size: usize,
}

impl FstMeta {
    /// Reads and checks the version, key count and root address (constant time; the
    /// nodes are checked as lookups reach them, the CRC32C by `verify`).
    pub fn parse(fst: &[u8]) -> Result<FstMeta> {
        if fst.len() < MIN_LEN {
            return Err(Damaged("too short for an FST"));
        }
        if read_u64(fst, 0) != Some(FST_VERSION) {
            return Err(Damaged("not an FST of format version 3"));
        }
        let trailer = fst.len() - TRAILER_LEN;
        let len = read_u64(fst, trailer).ok_or(Damaged("FST trailer out of bounds"))?;
        let root = read_u64(fst, trailer + 8).ok_or(Damaged("FST trailer out of bounds"))?;
        let root = usize::try_from(root).map_err(|_| Damaged("FST root address out of bounds"))?;
        // The root is the last node written, just before the trailer; address 0 (an
        // empty final root) only in an FST with nothing else.
        let ok = if root == EMPTY_ADDRESS { fst.len() == MIN_LEN } else { root.checked_add(1) == Some(trailer) };
        if !ok {
            return Err(Damaged("FST root address does not end the node area"));
        }
        Ok(FstMeta { root, len, size: fst.len() })
    }

    /// Number of keys, as the trailer says.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the trailer says there are no keys.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The node area of `fst` (what node addresses may point into).
    #[inline]
    fn nodes<'a>(&self, fst: &'a [u8]) -> Result<&'a [u8]> {
        if fst.len() != self.size {
            return Err(Damaged("FST bytes differ from the ones parsed"));
        }
        fst.get(..self.size - TRAILER_LEN).ok_or(Damaged("FST trailer out of bounds"))
    }

    /// `Fst::get`: the value of `key` in the FST `fst` (the bytes this was parsed from).
    #[inline]
    pub fn get(&self, fst: &[u8], key: &[u8]) -> Result<Option<u64>> {
        self.walk(fst, key).finish()
    }

    /// The lookup of `key` in `fst` (the bytes this was parsed from) as a [`Walk`] to
    /// be advanced one node at a time: [`get`](Self::get) runs one to its end,
    /// [`walk_interleaved`] runs several together.
    #[inline]
    pub fn walk<'a>(&self, fst: &'a [u8], key: &'a [u8]) -> Walk<'a> {
        match self.nodes(fst) {
            Ok(nodes) => Walk { nodes, key, addr: self.root, depth: 0, out: 0, answer: None },
            Err(e) => Walk { answer: Some(Err(e)), ..Walk::DONE },
        }
    }

    /// The reverse lookup of an **ordinal map** (values `0, 1, 2, …` in key order, as
    /// the index's key maps are): the key whose value is `value`, or `None` when no key
    /// has it. From the root, it follows the last transition whose output sum stays at or
    /// below `value` (in an ordinal map, a subtree's smallest value is the output sum on
    /// the way into it) and stops at the final node whose value is `value`: `key length +
    /// 1` node reads. Bounded like [`get`](Self::get): transitions lead to lower
    /// addresses, a key longer than [`MAX_KEY_LEN`] is damage, and every read is
    /// bounds-checked. On a map whose values are not ordinals the answer is meaningless
    /// (but still bounded).
    pub fn key_of(&self, fst: &[u8], value: u64) -> Result<Option<Vec<u8>>> {
        let nodes = self.nodes(fst)?;
        let mut node = Node::new(nodes, self.root)?;
        let mut out = 0u64;
        let mut key = Vec::new();
        loop {
            if node.is_final {
                let here = out.checked_add(node.final_output()?).ok_or(Damaged("FST output overflows"))?;
                if here == value {
                    return Ok(Some(key));
                }
                if here > value {
                    return Ok(None);
                }
            }
            let mut next = None;
            for i in 0..node.ntrans {
                let (input, o, addr) = node.transition(i)?;
                let at = out.checked_add(o).ok_or(Damaged("FST output overflows"))?;
                if at > value {
                    break;
                }
                next = Some((input, at, addr));
            }
            let Some((input, at, addr)) = next else {
                return Ok(None);
            };
            if key.len() >= MAX_KEY_LEN {
                return Err(Damaged("FST key longer than the limit"));
            }
            key.push(input);
            out = at;
            node = Node::new(nodes, addr)?;
        }
    }

    /// Every key with its value, in ascending key order.
    pub fn stream<'a>(&self, fst: &'a [u8]) -> Stream<'a> {
        Stream::new(self, fst)
    }
}

/// An exact-key lookup in progress: the node it has reached and the output summed on
/// the way there. [`step`](Self::step) decodes that node and follows the key's next
/// byte, so a walk makes at most `key.len() + 1` steps whatever the bytes (every read
/// bounds-checked as in [`FstMeta::get`], which is a walk run to its end: both give
/// the same answers and the same errors).
#[derive(Clone, Copy, Debug)]
pub struct Walk<'a> {
    /// The node area.
    nodes: &'a [u8],
    key: &'a [u8],
    /// The node to decode next.
    addr: usize,
    /// Bytes of `key` followed so far.
    depth: usize,
    /// Output summed so far.
    out: u64,
    /// The answer, once known.
    answer: Option<Result<Option<u64>>>,
}

impl<'a> Walk<'a> {
    /// A finished walk of nothing (`Ok(None)`): filler for arrays of walks.
    pub const DONE: Walk<'static> =
        Walk { nodes: &[], key: &[], addr: EMPTY_ADDRESS, depth: 0, out: 0, answer: Some(Ok(None)) };

    /// Decodes the current node and moves on to the next one; the walk's answer once it
    /// has one (and on every later call), `None` while it goes on.
    #[inline]
    pub fn step(&mut self) -> Option<Result<Option<u64>>> {
        if self.answer.is_none() {
            self.answer = self.advance().transpose();
        }
        self.answer
    }

    /// Runs the walk to its end: its answer.
    #[inline]
    pub fn finish(mut self) -> Result<Option<u64>> {
        if let Some(answer) = self.answer {
            return answer;
        }
        loop {
            if let Some(answer) = self.advance()? {
                return Ok(answer);
            }
        }
    }

    /// One node: the answer when it is known (`Ok(Some(value))`), `Ok(None)` while the
    /// walk goes on.
    #[inline]
    fn advance(&mut self) -> Result<Option<Option<u64>>> {
        let node = Node::new(self.nodes, self.addr)?;
        let Some(&b) = self.key.get(self.depth) else {
            if !node.is_final {
                return Ok(Some(None));
            }
            let value = self.out.checked_add(node.final_output()?).ok_or(Damaged("FST output overflows"))?;
            return Ok(Some(Some(value)));
        };
        let Some(i) = node.find_input(b)? else {
            return Ok(Some(None));
        };
        let (_, o, addr) = node.transition(i)?;
        self.out = self.out.checked_add(o).ok_or(Damaged("FST output overflows"))?;
        self.addr = addr;
        self.depth += 1;
        Ok(None)
    }

    /// The answer, if the walk has finished.
    #[inline]
    pub fn answer(&self) -> Option<Result<Option<u64>>> {
        self.answer
    }
}

/// Runs every walk of `walks` to its end, interleaved so that their memory misses
/// overlap: round-robin, each walk is advanced until its next node lies outside the
/// cache line just read, then a prefetch of that node is issued
/// (a hint to the CPU to load it) and the next walk is advanced while it loads. Each walk
/// gets the answer it would get alone (see [`Walk`]); bounded by the walks' key
/// lengths.
pub fn walk_interleaved(walks: &mut [Walk<'_>]) {
    let mut pending = walks.len();
    while pending > 0 {
        pending = 0;
        for walk in walks.iter_mut() {
            if walk.answer.is_some() {
                continue;
            }
            loop {
                let line = walk.addr / crate::mmap::CACHE_LINE;
                if walk.step().is_some() {
                    break;
                }
                if walk.addr / crate::mmap::CACHE_LINE != line {
                    // A node is read backwards from its state byte at `addr`.
                    crate::mmap::prefetch(walk.nodes, walk.addr);
                    crate::mmap::prefetch(walk.nodes, walk.addr.saturating_sub(PREFETCH_BELOW));
                    pending += 1;
                    break;
                }
            }
        }
    }
}

/// Bytes below a node's state byte that [`walk_interleaved`] also prefetches: the
/// small nodes of a key's path end within them.
const PREFETCH_BELOW: usize = 24;

/// `get` in one call: parses the trailer of `fst`, then looks `key` up.
pub fn get(fst: &[u8], key: &[u8]) -> Result<Option<u64>> {
    FstMeta::parse(fst)?.get(fst, key)
}

#[derive(Clone, Copy, Debug)]
struct Frame<'a> {
    node: Node<'a>,
    /// Output accumulated on the way to this node.
    out: u64,
    /// Next transition to follow.
    next: usize,
    /// Input of the last transition followed (they must ascend).
    last_input: u8,
    /// Whether the node's own key was handled.
    entered: bool,
}

/// A bounded depth-first walk over every key of an FST, in ascending order.
///
/// Bounds, so that no bytes can make it hang: paths are at most [`MAX_KEY_LEN`] long
/// (and addresses strictly decrease along them); the inputs of every node must ascend
/// (so keys come out strictly increasing); a node without transitions must be final
/// (except an empty root), so every descent reaches a key before backtracking; and at
/// most as many keys as the trailer declares are produced. The work is thus at most
/// about `2 × MAX_KEY_LEN` node visits per declared key.
pub struct Stream<'a> {
    nodes: Result<&'a [u8]>,
    root: usize,
    limit: u64,
    emitted: u64,
    stack: Vec<Frame<'a>>,
    key: Vec<u8>,
    started: bool,
    failed: bool,
}

impl<'a> Stream<'a> {
    fn new(meta: &FstMeta, fst: &'a [u8]) -> Stream<'a> {
        Stream {
            nodes: meta.nodes(fst),
            root: meta.root,
            limit: meta.len,
            emitted: 0,
            stack: Vec::new(),
            key: Vec::new(),
            started: false,
            failed: false,
        }
    }

    /// The next key and its value; `Ok(None)` at the end. After an error, keeps
    /// returning `Ok(None)`.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<(&[u8], u64)>> {
        if self.failed {
            return Ok(None);
        }
        match self.advance() {
            Ok(Some(value)) => Ok(Some((&self.key, value))),
            Ok(None) => Ok(None),
            Err(e) => {
                self.failed = true;
                self.stack.clear();
                Err(e)
            }
        }
    }

    fn advance(&mut self) -> Result<Option<u64>> {
        let nodes = self.nodes?;
        if !self.started {
            self.started = true;
            let node = Node::new(nodes, self.root)?;
            self.stack.push(Frame { node, out: 0, next: 0, last_input: 0, entered: false });
        }
        loop {
            let depth = self.stack.len();
            let Some(top) = self.stack.last_mut() else {
                return Ok(None);
            };
            if !top.entered {
                top.entered = true;
                if top.node.is_final {
                    let value = top.out.checked_add(top.node.final_output()?).ok_or(Damaged("FST output overflows"))?;
                    self.emitted += 1;
                    if self.emitted > self.limit {
                        return Err(Damaged("FST holds more keys than its trailer says"));
                    }
                    return Ok(Some(value));
                }
                if top.node.ntrans == 0 && depth > 1 {
                    return Err(Damaged("FST path ends in a non-final node"));
                }
            }
            if top.next < top.node.ntrans {
                let i = top.next;
                top.next += 1;
                let (input, out, addr) = top.node.transition(i)?;
                if i > 0 && input <= top.last_input {
                    return Err(Damaged("FST transitions out of order"));
                }
                top.last_input = input;
                let out = top.out.checked_add(out).ok_or(Damaged("FST output overflows"))?;
                if self.key.len() >= MAX_KEY_LEN {
                    return Err(Damaged("FST key longer than 64 KiB"));
                }
                let node = Node::new(nodes, addr)?;
                self.key.push(input);
                self.stack.push(Frame { node, out, next: 0, last_input: 0, entered: false });
            } else {
                self.stack.pop();
                self.key.pop();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(entries: &[(&[u8], u64)]) -> Vec<u8> {
        let mut b = fst::MapBuilder::memory();
        for (k, v) in entries {
            b.insert(k, *v).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn stream_all(bytes: &[u8]) -> Result<Vec<(Vec<u8>, u64)>> {
        let meta = FstMeta::parse(bytes)?;
        let mut s = meta.stream(bytes);
        let mut all = Vec::new();
        while let Some((k, v)) = s.next()? {
            all.push((k.to_vec(), v));
        }
        Ok(all)
    }

    #[test]
    fn common_inputs_match_the_crate() {
        // Every single byte, as a key alone, doubled, and after a shared prefix: covers
        // both common-input and explicit-input encodings of the one-transition states.
        let mut keys: Vec<Vec<u8>> = Vec::new();
        for b in 0..=255u8 {
            keys.push(vec![b]);
            keys.push(vec![b, b]);
            keys.push(vec![b'x', b'@', b]);
        }
        keys.sort();
        keys.dedup();
        let mut b = fst::MapBuilder::memory();
        for (i, k) in keys.iter().enumerate() {
            b.insert(k, i as u64 * 7).unwrap();
        }
        let bytes = b.into_inner().unwrap();
        let map = fst::Map::new(bytes.clone()).unwrap();
        for k in &keys {
            assert_eq!(get(&bytes, k).unwrap(), map.get(k), "{k:?}");
            let mut miss = k.clone();
            miss.push(b'!');
            assert_eq!(get(&bytes, &miss).unwrap(), map.get(&miss), "{miss:?}");
        }
        let streamed = stream_all(&bytes).unwrap();
        assert_eq!(streamed.len(), keys.len());
        for (i, (k, v)) in streamed.iter().enumerate() {
            assert_eq!((k, *v), (&keys[i], i as u64 * 7));
        }
    }

    #[test]
    fn small_maps() {
        let empty = build(&[]);
        assert_eq!(get(&empty, b"").unwrap(), None);
        assert_eq!(get(&empty, b"a").unwrap(), None);
        assert!(stream_all(&empty).unwrap().is_empty());

        let only_empty_key = build(&[(b"", 0)]);
        assert_eq!(only_empty_key.len(), MIN_LEN);
        assert_eq!(get(&only_empty_key, b"").unwrap(), Some(0));
        assert_eq!(stream_all(&only_empty_key).unwrap(), vec![(vec![], 0)]);

        let m = build(&[(b"", 5), (b"a", 0), (b"ab", u64::MAX), (b"b", 1 << 40)]);
        assert_eq!(get(&m, b"").unwrap(), Some(5));
        assert_eq!(get(&m, b"a").unwrap(), Some(0));
        assert_eq!(get(&m, b"ab").unwrap(), Some(u64::MAX));
        assert_eq!(get(&m, b"b").unwrap(), Some(1 << 40));
        assert_eq!(get(&m, b"abc").unwrap(), None);
        assert_eq!(stream_all(&m).unwrap().len(), 4);
    }

    #[test]
    fn wide_nodes_use_the_index() {
        // 256 transitions out of the root (count byte 1) and 40 out of "x".
        let mut keys: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
        keys.extend((0..40u8).map(|b| vec![b'x', b'0' + b]));
        keys.sort();
        let mut b = fst::MapBuilder::memory();
        for (i, k) in keys.iter().enumerate() {
            b.insert(k, i as u64).unwrap();
        }
        let bytes = b.into_inner().unwrap();
        let meta = FstMeta::parse(&bytes).unwrap();
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(get(&bytes, k).unwrap(), Some(i as u64));
            assert_eq!(meta.key_of(&bytes, i as u64).unwrap().as_ref(), Some(k), "reverse walk of ordinal {i}");
        }
        assert_eq!(get(&bytes, b"x\xff").unwrap(), None);
        assert_eq!(stream_all(&bytes).unwrap().len(), keys.len());
    }

    #[test]
    fn damaged_trailers_are_errors() {
        let good = build(&[(b"alice@example.com", 0), (b"bob@example.com", 1)]);
        assert!(FstMeta::parse(&good[..35]).is_err());
        let mut bad = good.clone();
        bad[0] = 2;
        assert!(FstMeta::parse(&bad).is_err());
        let n = good.len();
        let mut bad = good.clone();
        bad[n - 12] ^= 1; // root address
        assert!(FstMeta::parse(&bad).is_err());
        let meta = FstMeta::parse(&good).unwrap();
        assert!(meta.get(&good[..n - 1], b"bob@example.com").is_err());
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;
        use std::collections::BTreeMap;

        /// Keys with plenty of shared prefixes and suffixes, some arbitrary bytes (wide
        /// nodes, explicit inputs), some long, and the empty key.
        fn key() -> impl Strategy<Value = Vec<u8>> {
            let small = prop::collection::vec(prop::sample::select(b"ab.@-0z".to_vec()), 0..10);
            let any = prop::collection::vec(any::<u8>(), 0..4);
            let long = prop::collection::vec(prop::sample::select(b"ab".to_vec()), 100..400);
            let email = (
                prop::collection::vec(prop::sample::select(b"abcdefgh1.".to_vec()), 1..8),
                prop::sample::select(vec![&b"@gmail.com"[..], b"@example.org", b"@x.io", b""]),
            )
                .prop_map(|(mut local, domain)| {
                    local.extend_from_slice(domain);
                    local
                });
            prop_oneof![3 => small, 2 => any, 1 => long, 3 => email]
        }

        fn value() -> impl Strategy<Value = u64> {
            prop_oneof![Just(0u64), 0..300u64, any::<u64>(), (u64::MAX - 3)..=u64::MAX]
        }

        fn entries() -> impl Strategy<Value = BTreeMap<Vec<u8>, u64>> {
            prop_oneof![
                prop::collection::btree_map(key(), value(), 0..200),
                // Many one- or two-byte keys: nodes with more than 32 transitions, up to 256.
                prop::collection::btree_map(prop::collection::vec(any::<u8>(), 1..3), value(), 30..600),
            ]
        }

        fn build(entries: &BTreeMap<Vec<u8>, u64>) -> Vec<u8> {
            let mut b = fst::MapBuilder::memory();
            for (k, v) in entries {
                b.insert(k, *v).unwrap();
            }
            b.into_inner().unwrap()
        }

        /// The answers of `keys` walked together by [`walk_interleaved`], in order.
        fn interleaved(meta: &FstMeta, bytes: &[u8], keys: &[Vec<u8>]) -> Vec<Result<Option<u64>>> {
            let mut walks: Vec<Walk<'_>> = keys.iter().map(|k| meta.walk(bytes, k)).collect();
            walk_interleaved(&mut walks);
            walks.iter().map(|w| w.answer().expect("every walk finished")).collect()
        }

        /// Every lookup and a full stream; errors allowed, panics and hangs not. The
        /// interleaved walks give each probe the answer or error of its lone lookup.
        fn exercise(bytes: &[u8], probes: &[Vec<u8>]) {
            for k in probes {
                let _ = get(bytes, k);
            }
            if let Ok(meta) = FstMeta::parse(bytes) {
                let alone: Vec<_> = probes.iter().map(|k| meta.get(bytes, k)).collect();
                assert_eq!(interleaved(&meta, bytes, probes), alone);
                // Walks of bytes other than the parsed ones fail, as `get` does.
                let shorter = bytes.get(..bytes.len() - 1).unwrap_or_default();
                for (w, k) in interleaved(&meta, shorter, probes).into_iter().zip(probes) {
                    assert_eq!(w, meta.get(shorter, k));
                }
                for v in (0..64).chain([meta.len(), u64::MAX]) {
                    let _ = meta.key_of(bytes, v);
                }
                let mut s = meta.stream(bytes);
                // Bounded by the declared key count (at most a few thousand here).
                while let Ok(Some(_)) = s.next() {}
            }
        }

        /// Replaces the trailer so that the root is the last byte of the (damaged) node
        /// area: reaches arbitrary bytes as a root node.
        fn reseal(mut nodes: Vec<u8>, len: u64) -> Vec<u8> {
            let root = nodes.len() as u64 - 1;
            nodes.extend_from_slice(&len.to_le_bytes());
            nodes.extend_from_slice(&root.to_le_bytes());
            nodes.extend_from_slice(&[0; 4]);
            nodes
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

            #[test]
            fn same_answers_as_the_fst_crate(entries in entries(), misses in prop::collection::vec(key(), 0..20)) {
                let bytes = build(&entries);
                let map = fst::Map::new(bytes.clone()).unwrap();
                let meta = FstMeta::parse(&bytes).unwrap();
                prop_assert_eq!(meta.len(), entries.len() as u64);
                for (k, v) in &entries {
                    prop_assert_eq!(meta.get(&bytes, k).unwrap(), Some(*v));
                    // Absent neighbours: a longer key and every proper prefix.
                    let mut longer = k.clone();
                    longer.push(b'a');
                    prop_assert_eq!(meta.get(&bytes, &longer).unwrap(), map.get(&longer));
                    for n in 0..k.len().min(12) {
                        prop_assert_eq!(meta.get(&bytes, &k[..n]).unwrap(), map.get(&k[..n]));
                    }
                }
                for k in &misses {
                    prop_assert_eq!(meta.get(&bytes, k).unwrap(), map.get(k));
                }
                // Walked together: hits, their proper prefixes and extensions, misses,
                // the empty key, in an order that mixes long and short walks.
                let mut probes: Vec<Vec<u8>> = vec![Vec::new()];
                for k in entries.keys().take(60) {
                    probes.push(k.clone());
                    probes.push(k[..k.len() / 2].to_vec());
                    probes.push([k.as_slice(), b"a"].concat());
                }
                probes.extend(misses.iter().cloned());
                let expected: Vec<_> = probes.iter().map(|k| Ok(map.get(k))).collect();
                prop_assert_eq!(interleaved(&meta, &bytes, &probes), expected);
                let mut ours = Vec::new();
                let mut s = meta.stream(&bytes);
                while let Some((k, v)) = s.next().unwrap() {
                    ours.push((k.to_vec(), v));
                }
                let theirs: Vec<(Vec<u8>, u64)> = entries.into_iter().collect();
                prop_assert_eq!(ours, theirs);
            }

            #[test]
            fn key_of_inverts_an_ordinal_map(keys in prop::collection::btree_set(key(), 0..200)) {
                let entries: BTreeMap<Vec<u8>, u64> =
                    keys.iter().enumerate().map(|(i, k)| (k.clone(), i as u64)).collect();
                let bytes = build(&entries);
                let meta = FstMeta::parse(&bytes).unwrap();
                for (k, v) in &entries {
                    prop_assert_eq!(meta.key_of(&bytes, *v).unwrap(), Some(k.clone()));
                }
                let n = entries.len() as u64;
                prop_assert_eq!(meta.key_of(&bytes, n).unwrap(), None);
                prop_assert_eq!(meta.key_of(&bytes, u64::MAX).unwrap(), None);
            }

            #[test]
            fn damaged_bytes_never_panic(
                entries in prop::collection::btree_map(key(), value(), 0..120),
                edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
                cut in any::<prop::sample::Index>(),
                tail in prop::collection::vec(any::<u8>(), 0..40),
                mode in 0..5u8,
                probes in prop::collection::vec(key(), 0..10),
                declared in prop_oneof![0..2000u64, Just(u64::MAX)],
            ) {
                let good = build(&entries);
                let mut probes = probes;
                probes.extend(entries.keys().take(40).cloned());
                let bytes = match mode {
                    // Overwrite bytes anywhere, the trailer included.
                    0 => {
                        let mut b = good.clone();
                        for (at, v) in &edits {
                            let i = at.index(b.len());
                            b[i] = *v;
                        }
                        b
                    }
                    // Overwrite node bytes only (the trailer still parses).
                    1 => {
                        let mut b = good.clone();
                        let nodes = b.len() - TRAILER_LEN;
                        for (at, v) in &edits {
                            let i = at.index(nodes);
                            b[i] = *v;
                        }
                        b
                    }
                    // Truncate, or extend.
                    2 => good[..cut.index(good.len() + 1)].to_vec(),
                    3 => [good.clone(), tail.clone()].concat(),
                    // Cut the node area anywhere, append garbage and reseal: any bytes
                    // become the root node, with any declared key count.
                    _ => {
                        let nodes = good.len() - TRAILER_LEN;
                        let mut b = good[..HEADER_LEN + cut.index(nodes - HEADER_LEN + 1)].to_vec();
                        b.extend_from_slice(&tail);
                        for (at, v) in &edits {
                            let i = at.index(b.len());
                            if i >= HEADER_LEN {
                                b[i] = *v;
                            }
                        }
                        if b.len() == HEADER_LEN {
                            b.push(0);
                        }
                        reseal(b, declared)
                    }
                };
                exercise(&bytes, &probes);
            }
        }
    }
}
