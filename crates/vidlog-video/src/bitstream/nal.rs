//! Codec-independent NAL unit framing shared by H.264 and H.265.
//!
//! Owns: finding Annex B start codes, splitting Annex B and length-prefixed (AVCC/HVCC, "MP4
//! style") byte streams into NAL units, converting between the two framings, and removing or
//! inserting emulation-prevention bytes. It does not look inside NAL units; the codec modules do.
//!
//! Every function here accepts arbitrary bytes without panicking; malformed framing is an error
//! naming the byte offset.

use std::borrow::Cow;

use memchr::memmem;

/// The three-byte Annex B start code prefix `00 00 01`.
pub const START_CODE: [u8; 3] = [0, 0, 1];

/// The four-byte Annex B start code `00 00 00 01` this crate writes in front of every NAL unit.
pub const START_CODE_4: [u8; 4] = [0, 0, 0, 1];

/// One NAL unit inside a larger buffer: its bytes (header included, start code or length
/// prefix excluded, emulation prevention still present) and where they begin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NalUnit<'a> {
    /// Byte offset of the NAL unit's first (header) byte within the buffer that was split.
    pub offset: usize,
    /// The NAL unit bytes, header first, trailing zero bytes removed.
    pub bytes: &'a [u8],
}

/// A framing problem: what is wrong and at which byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NalFramingError {
    /// Data before the first start code that is not zero padding.
    #[error(
        "no Annex B start code before byte {offset}: the data starts with {first_bytes:02x?}, \
         expected 00 00 01 or 00 00 00 01 (is this length-prefixed AVCC data?)"
    )]
    MissingStartCode {
        /// Offset of the first non-zero byte before any start code.
        offset: usize,
        /// Up to four bytes found there.
        first_bytes: Vec<u8>,
    },
    /// The buffer holds no NAL unit at all.
    #[error("no NAL unit found in {len} bytes")]
    NoNalUnits {
        /// Length of the buffer.
        len: usize,
    },
    /// A length size other than 1, 2 or 4 bytes.
    #[error("unsupported NAL length size {0} bytes; AVCC/HVCC allow 1, 2 or 4")]
    UnsupportedLengthSize(usize),
    /// The buffer ends inside a length prefix.
    #[error(
        "truncated length prefix at byte {offset}: {available} bytes left, a prefix is {length_size}"
    )]
    TruncatedLengthPrefix {
        /// Offset of the prefix.
        offset: usize,
        /// Bytes left in the buffer.
        available: usize,
        /// The configured length size.
        length_size: usize,
    },
    /// A length prefix pointing past the end of the buffer.
    #[error(
        "NAL unit at byte {offset} claims {length} bytes but only {available} remain; \
         is the length size ({length_size} bytes) right, or is this Annex B data?"
    )]
    LengthPastEnd {
        /// Offset of the length prefix.
        offset: usize,
        /// The length it claims.
        length: usize,
        /// Bytes after the prefix.
        available: usize,
        /// The configured length size.
        length_size: usize,
    },
    /// A zero-length NAL unit in length-prefixed data.
    #[error("empty NAL unit (length 0) at byte {offset}")]
    EmptyNalUnit {
        /// Offset of the length prefix.
        offset: usize,
    },
    /// A NAL unit too long for the requested length size.
    #[error(
        "NAL unit at byte {offset} is {length} bytes, too long for a {length_size}-byte length prefix"
    )]
    NalTooLong {
        /// Offset of the NAL unit in the input.
        offset: usize,
        /// Its length.
        length: usize,
        /// The requested length size.
        length_size: usize,
    },
}

/// Finds the next `00 00 01` at or after `from`; returns the index of its first zero.
pub fn find_start_code(data: &[u8], from: usize) -> Option<usize> {
    let tail = data.get(from..)?;
    memmem::find(tail, &START_CODE).map(|i| from + i)
}

/// Removes trailing zero bytes (the `zero_byte` of a following 4-byte start code and any
/// `trailing_zero_8bits`). A NAL unit never ends in a zero byte.
pub fn trim_trailing_zeros(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    &bytes[..end]
}

/// Lazily iterates the NAL units of an Annex B buffer (3- or 4-byte start codes, any number of
/// trailing zero bytes). Non-zero bytes before the first start code are reported once as
/// [`NalFramingError::MissingStartCode`] and then skipped. Empty NAL units are skipped.
///
/// Finding where a NAL unit ends means scanning it for the next start code; callers that only
/// need headers should use [`find_start_code`] directly and stop early.
pub struct AnnexBNalUnits<'a> {
    data: &'a [u8],
    /// Start of the next NAL unit's payload, if a start code was found.
    next_payload: Option<usize>,
    pending_error: Option<NalFramingError>,
}

impl<'a> AnnexBNalUnits<'a> {
    /// Starts iterating `data`.
    pub fn new(data: &'a [u8]) -> Self {
        let first = find_start_code(data, 0);
        let leading = &data[..first.unwrap_or(data.len())];
        let pending_error =
            leading
                .iter()
                .position(|&b| b != 0)
                .map(|offset| NalFramingError::MissingStartCode {
                    offset,
                    first_bytes: data[offset..].iter().take(4).copied().collect(),
                });
        Self {
            data,
            next_payload: first.map(|sc| sc + START_CODE.len()),
            pending_error,
        }
    }
}

impl<'a> Iterator for AnnexBNalUnits<'a> {
    type Item = Result<NalUnit<'a>, NalFramingError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(err) = self.pending_error.take() {
            return Some(Err(err));
        }
        loop {
            let start = self.next_payload?;
            let next_sc = find_start_code(self.data, start);
            let end = next_sc.unwrap_or(self.data.len());
            self.next_payload = next_sc.map(|sc| sc + START_CODE.len());
            let bytes = trim_trailing_zeros(self.data.get(start..end).unwrap_or(&[]));
            if !bytes.is_empty() {
                return Some(Ok(NalUnit {
                    offset: start,
                    bytes,
                }));
            }
        }
    }
}

/// Splits an Annex B buffer into its NAL units. Fails if non-zero bytes precede the first start
/// code or if there is no NAL unit at all.
pub fn split_annexb(data: &[u8]) -> Result<Vec<NalUnit<'_>>, NalFramingError> {
    let nals = AnnexBNalUnits::new(data).collect::<Result<Vec<_>, _>>()?;
    if nals.is_empty() {
        return Err(NalFramingError::NoNalUnits { len: data.len() });
    }
    Ok(nals)
}

fn check_length_size(length_size: usize) -> Result<(), NalFramingError> {
    match length_size {
        1 | 2 | 4 => Ok(()),
        other => Err(NalFramingError::UnsupportedLengthSize(other)),
    }
}

/// Splits length-prefixed (AVCC/HVCC) data: each NAL unit preceded by a big-endian length of
/// `length_size` bytes (1, 2 or 4; from the decoder configuration record).
pub fn split_length_prefixed(
    data: &[u8],
    length_size: usize,
) -> Result<Vec<NalUnit<'_>>, NalFramingError> {
    check_length_size(length_size)?;
    let mut nals = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let available = data.len() - pos;
        let Some(prefix) = data.get(pos..pos + length_size) else {
            return Err(NalFramingError::TruncatedLengthPrefix {
                offset: pos,
                available,
                length_size,
            });
        };
        let length = prefix
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        let body = pos + length_size;
        if length == 0 {
            return Err(NalFramingError::EmptyNalUnit { offset: pos });
        }
        let Some(bytes) = body.checked_add(length).and_then(|end| data.get(body..end)) else {
            return Err(NalFramingError::LengthPastEnd {
                offset: pos,
                length,
                available: available - length_size,
                length_size,
            });
        };
        nals.push(NalUnit {
            offset: body,
            bytes,
        });
        pos = body + length;
    }
    if nals.is_empty() {
        return Err(NalFramingError::NoNalUnits { len: data.len() });
    }
    Ok(nals)
}

/// Converts Annex B data to length-prefixed data with `length_size`-byte lengths.
pub fn annexb_to_length_prefixed(
    data: &[u8],
    length_size: usize,
) -> Result<Vec<u8>, NalFramingError> {
    check_length_size(length_size)?;
    let nals = split_annexb(data)?;
    let mut out = Vec::with_capacity(data.len() + nals.len() * length_size);
    for nal in nals {
        let length = nal.bytes.len();
        if length_size < 4 && length >= 1usize << (8 * length_size) {
            return Err(NalFramingError::NalTooLong {
                offset: nal.offset,
                length,
                length_size,
            });
        }
        let length = u32::try_from(length).map_err(|_| NalFramingError::NalTooLong {
            offset: nal.offset,
            length,
            length_size,
        })?;
        out.extend_from_slice(&length.to_be_bytes()[4 - length_size..]);
        out.extend_from_slice(nal.bytes);
    }
    Ok(out)
}

/// Converts length-prefixed data to Annex B with 4-byte start codes.
pub fn length_prefixed_to_annexb(
    data: &[u8],
    length_size: usize,
) -> Result<Vec<u8>, NalFramingError> {
    let nals = split_length_prefixed(data, length_size)?;
    let mut out = Vec::with_capacity(data.len() + nals.len() * 4);
    for nal in nals {
        out.extend_from_slice(&START_CODE_4);
        out.extend_from_slice(nal.bytes);
    }
    Ok(out)
}

/// Removes emulation-prevention bytes: every `03` in `00 00 03` is dropped, turning NAL unit
/// payload bytes into RBSP bytes. Borrows when there is nothing to remove.
pub fn remove_emulation_prevention(nal: &[u8]) -> Cow<'_, [u8]> {
    const EPB: [u8; 3] = [0, 0, 3];
    let Some(first) = memmem::find(nal, &EPB) else {
        return Cow::Borrowed(nal);
    };
    let mut out = Vec::with_capacity(nal.len());
    let mut copied_to = 0;
    let mut at = first;
    loop {
        // Keep the two zeros, drop the 03.
        out.extend_from_slice(&nal[copied_to..at + 2]);
        copied_to = at + 3;
        match nal
            .get(copied_to..)
            .and_then(|rest| memmem::find(rest, &EPB))
        {
            Some(i) => at = copied_to + i,
            None => break,
        }
    }
    out.extend_from_slice(nal.get(copied_to..).unwrap_or(&[]));
    Cow::Owned(out)
}

/// Inserts emulation-prevention bytes so that RBSP bytes never form `00 00 00`, `00 00 01`,
/// `00 00 02` or `00 00 03` (the inverse of [`remove_emulation_prevention`]).
pub fn insert_emulation_prevention(rbsp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rbsp.len() + rbsp.len() / 64);
    let mut zeros = 0;
    for &b in rbsp {
        if zeros >= 2 && b <= 3 {
            out.push(3);
            zeros = 0;
        }
        out.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    if zeros >= 2 {
        // A NAL unit may not end in 00 00; cabac_zero_words get a final 03.
        out.push(3);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_three_and_four_byte_start_codes_and_trailing_zeros() {
        let data = [
            0, 0, 0, 1, 0x67, 0xAA, // SPS
            0, 0, 1, 0x68, 0xBB, 0, 0, // PPS + trailing zeros
            0, 0, 0, 1, 0x65, 0x01, 0x02,
        ];
        let nals = split_annexb(&data).expect("valid");
        let bytes: Vec<&[u8]> = nals.iter().map(|n| n.bytes).collect();
        assert_eq!(bytes, vec![&[0x67, 0xAA][..], &[0x68, 0xBB], &[0x65, 1, 2]]);
        assert_eq!(nals[0].offset, 4);
        assert_eq!(nals[1].offset, 9);
    }

    #[test]
    fn reports_garbage_before_first_start_code() {
        let err = split_annexb(&[0, 0x12, 0, 0, 1, 0x65]).unwrap_err();
        assert!(matches!(
            err,
            NalFramingError::MissingStartCode { offset: 1, .. }
        ));
        assert!(err.to_string().contains("byte 1"), "{err}");
        assert!(matches!(
            split_annexb(&[0, 0, 0]).unwrap_err(),
            NalFramingError::NoNalUnits { len: 3 }
        ));
    }

    #[test]
    fn length_prefixed_roundtrip() {
        let annexb = [
            0, 0, 0, 1, 0x67, 1, 2, 3, 0, 0, 1, 0x68, 4, 0, 0, 1, 0x65, 9,
        ];
        for size in [1, 2, 4] {
            let avcc = annexb_to_length_prefixed(&annexb, size).expect("converts");
            let nals = split_length_prefixed(&avcc, size).expect("splits");
            assert_eq!(nals.len(), 3);
            let back = length_prefixed_to_annexb(&avcc, size).expect("converts back");
            assert_eq!(
                back,
                [
                    0, 0, 0, 1, 0x67, 1, 2, 3, 0, 0, 0, 1, 0x68, 4, 0, 0, 0, 1, 0x65, 9
                ]
            );
        }
        assert!(matches!(
            annexb_to_length_prefixed(&annexb, 3),
            Err(NalFramingError::UnsupportedLengthSize(3))
        ));
    }

    #[test]
    fn length_prefixed_errors_name_offsets() {
        let err = split_length_prefixed(&[0, 0, 0, 2, 0x65, 1, 0, 0, 0, 9, 1], 4).unwrap_err();
        assert_eq!(
            err,
            NalFramingError::LengthPastEnd {
                offset: 6,
                length: 9,
                available: 1,
                length_size: 4
            }
        );
        let err = split_length_prefixed(&[0, 0, 0, 1, 0x65, 0, 0], 4).unwrap_err();
        assert!(matches!(
            err,
            NalFramingError::TruncatedLengthPrefix { offset: 5, .. }
        ));
        let long = vec![0x65; 300];
        let mut annexb = START_CODE_4.to_vec();
        annexb.extend_from_slice(&long);
        assert!(matches!(
            annexb_to_length_prefixed(&annexb, 1),
            Err(NalFramingError::NalTooLong { length: 300, .. })
        ));
    }

    #[test]
    fn emulation_prevention_roundtrip() {
        let nal = [0x65, 0, 0, 3, 1, 0, 0, 3, 0, 0, 3, 3, 7];
        let rbsp = remove_emulation_prevention(&nal);
        assert_eq!(&*rbsp, &[0x65, 0, 0, 1, 0, 0, 0, 0, 3, 7]);
        assert_eq!(insert_emulation_prevention(&rbsp), nal);
        assert!(matches!(
            remove_emulation_prevention(&[1, 2, 3]),
            Cow::Borrowed(_)
        ));
        // Trailing 00 00 03 at the very end.
        assert_eq!(
            &*remove_emulation_prevention(&[0x65, 0, 0, 3]),
            &[0x65, 0, 0]
        );
        assert_eq!(
            insert_emulation_prevention(&[0x65, 0, 0]),
            vec![0x65, 0, 0, 3]
        );
    }

    #[test]
    fn never_panics_on_small_inputs() {
        // Every buffer of up to 4 bytes over an alphabet that hits all edge cases.
        let alphabet = [0u8, 1, 3, 0x65, 0xFF];
        let mut buf = Vec::new();
        for len in 0..=5u32 {
            for code in 0..alphabet.len().pow(len) {
                buf.clear();
                let mut c = code;
                for _ in 0..len {
                    buf.push(alphabet[c % alphabet.len()]);
                    c /= alphabet.len();
                }
                let _ = split_annexb(&buf);
                for size in [1, 2, 3, 4] {
                    let _ = split_length_prefixed(&buf, size);
                    let _ = annexb_to_length_prefixed(&buf, size);
                }
                let rbsp = remove_emulation_prevention(&buf);
                let _ = insert_emulation_prevention(&rbsp);
            }
        }
    }
}
