//! A small MSB-first bit reader over RBSP bytes (emulation prevention already removed), with
//! Exp-Golomb codes for the few fields we read without `h264-reader` (the first slice-header
//! field, AV1 header bits). Reading past the end is an error, never a panic.

/// Ran out of bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("ran out of data after {bits_read} bits while reading {field}")]
pub struct OutOfBits {
    /// The syntax element being read.
    pub field: &'static str,
    /// Bits consumed before the failure.
    pub bits_read: usize,
}

/// Reads bits most-significant first.
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    data: &'a [u8],
    bit_pos: usize,
}

impl<'a> BitReader<'a> {
    /// Starts at the first bit of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, bit_pos: 0 }
    }

    /// Bits consumed so far.
    pub fn position(&self) -> usize {
        self.bit_pos
    }

    /// Reads one bit.
    pub fn read_bit(&mut self, field: &'static str) -> Result<bool, OutOfBits> {
        let byte = self.data.get(self.bit_pos / 8).ok_or(OutOfBits {
            field,
            bits_read: self.bit_pos,
        })?;
        let bit = (byte >> (7 - (self.bit_pos % 8))) & 1;
        self.bit_pos += 1;
        Ok(bit == 1)
    }

    /// Reads `n` bits (at most 32) as an unsigned number.
    pub fn read_bits(&mut self, n: u32, field: &'static str) -> Result<u32, OutOfBits> {
        debug_assert!(n <= 32);
        let mut value: u64 = 0;
        for _ in 0..n.min(32) {
            value = (value << 1) | u64::from(self.read_bit(field)?);
        }
        // At most 32 bits were shifted in.
        Ok(value as u32)
    }

    /// Reads an unsigned Exp-Golomb code `ue(v)` (values up to `u32::MAX - 1`).
    pub fn read_ue(&mut self, field: &'static str) -> Result<u32, OutOfBits> {
        let mut leading_zeros = 0u32;
        while !self.read_bit(field)? {
            leading_zeros += 1;
            if leading_zeros > 31 {
                return Err(OutOfBits {
                    field,
                    bits_read: self.bit_pos,
                });
            }
        }
        let suffix = self.read_bits(leading_zeros, field)?;
        let value = (1u64 << leading_zeros) - 1 + u64::from(suffix);
        u32::try_from(value).map_err(|_| OutOfBits {
            field,
            bits_read: self.bit_pos,
        })
    }

    /// Reads a signed Exp-Golomb code `se(v)`.
    pub fn read_se(&mut self, field: &'static str) -> Result<i32, OutOfBits> {
        let k = i64::from(self.read_ue(field)?);
        let value = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        // |value| <= 2^31, so this only saturates at the single out-of-range code.
        Ok(value.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bits_and_exp_golomb() {
        // 1 | 010 | 011 | 00100 | 0001000 ... => ue: 0, 1, 2, 3, 7
        let data = [0b1010_0110, 0b0100_0001, 0b0000_0000];
        let mut r = BitReader::new(&data);
        assert_eq!(r.read_ue("a"), Ok(0));
        assert_eq!(r.read_ue("b"), Ok(1));
        assert_eq!(r.read_ue("c"), Ok(2));
        assert_eq!(r.read_ue("d"), Ok(3));
        assert_eq!(r.read_ue("e"), Ok(7));
        assert!(r.read_ue("f").is_err());
        let mut r = BitReader::new(&[0b0100_1100]);
        assert_eq!(r.read_se("x"), Ok(1));
        assert_eq!(r.read_se("y"), Ok(-1));
        assert_eq!(r.read_bits(2, "z"), Ok(0));
        assert!(r.read_bit("end").is_err());
    }
}
