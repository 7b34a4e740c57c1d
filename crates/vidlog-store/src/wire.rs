//! Little-endian and varint helpers for the footer's hand-rolled binary layout.
//! Reading never panics: running out of bytes is an error naming what was being read.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("footer ends early while reading {what} at byte {offset}")]
pub struct WireError {
    pub what: &'static str,
    pub offset: usize,
}

#[derive(Default)]
pub struct WireWriter {
    pub buf: Vec<u8>,
}

impl WireWriter {
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }
    pub fn zigzag(&mut self, v: i64) {
        self.varint(((v << 1) ^ (v >> 63)) as u64);
    }
    pub fn str(&mut self, s: &str) {
        self.varint(s.len() as u64);
        self.buf.extend_from_slice(s.as_bytes());
    }
    /// Values as zigzag deltas from the previous value (first from 0).
    pub fn deltas(&mut self, values: impl IntoIterator<Item = i64>) {
        let mut prev = 0i64;
        for v in values {
            self.zigzag(v.wrapping_sub(prev));
            prev = v;
        }
    }
}

pub struct WireReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> WireReader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        WireReader { buf, pos: 0 }
    }
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        if self.remaining() < n {
            return Err(WireError {
                what,
                offset: self.pos,
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    pub fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        Ok(self.take(1, what)?[0])
    }
    pub fn u32(&mut self, what: &'static str) -> Result<u32, WireError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn u64(&mut self, what: &'static str) -> Result<u64, WireError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8, what)?);
        Ok(u64::from_le_bytes(a))
    }
    pub fn varint(&mut self, what: &'static str) -> Result<u64, WireError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8(what)?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(WireError {
            what,
            offset: self.pos,
        })
    }
    /// A varint used as a count of items that each take at least one byte: bounded by
    /// the bytes left, so a corrupt count cannot make us allocate wildly.
    pub fn count(&mut self, what: &'static str) -> Result<usize, WireError> {
        let n = self.varint(what)?;
        usize::try_from(n)
            .ok()
            .filter(|n| *n <= self.remaining())
            .ok_or(WireError {
                what,
                offset: self.pos,
            })
    }
    pub fn zigzag(&mut self, what: &'static str) -> Result<i64, WireError> {
        let v = self.varint(what)?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }
    pub fn str(&mut self, what: &'static str) -> Result<&'a str, WireError> {
        let n = self.count(what)?;
        let offset = self.pos;
        std::str::from_utf8(self.take(n, what)?).map_err(|_| WireError { what, offset })
    }
    pub fn deltas(&mut self, n: usize, what: &'static str) -> Result<Vec<i64>, WireError> {
        let mut out = Vec::with_capacity(n);
        let mut prev = 0i64;
        for _ in 0..n {
            prev = prev.wrapping_add(self.zigzag(what)?);
            out.push(prev);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut w = WireWriter::default();
        w.varint(300);
        w.zigzag(-5);
        w.str("camera/front");
        w.deltas([10, 5, i64::MAX, i64::MIN]);
        w.u64(7);
        let mut r = WireReader::new(&w.buf);
        assert_eq!(r.varint("a").unwrap(), 300);
        assert_eq!(r.zigzag("b").unwrap(), -5);
        assert_eq!(r.str("c").unwrap(), "camera/front");
        assert_eq!(r.deltas(4, "d").unwrap(), vec![10, 5, i64::MAX, i64::MIN]);
        assert_eq!(r.u64("e").unwrap(), 7);
        assert!(r.u8("f").is_err());
    }
}
