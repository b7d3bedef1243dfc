//! Fixed-width lowercase hex, written without the formatting machinery:
//! request ids and trace ids are written on every request (headers, the
//! access log).

/// Up to 32 lowercase hex digits on the stack (`{:032x}` through the
/// formatting machinery cost a measurable share of a request's CPU).
#[derive(Clone, Copy)]
pub struct HexDigits {
    digits: [u8; 32],
    len: usize,
}

impl HexDigits {
    /// The low `len` (at most 32) hex digits of `value`.
    pub fn new(value: u128, len: usize) -> HexDigits {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut digits = [0u8; 32];
        for (i, digit) in digits[..len].iter_mut().enumerate() {
            let shift = 4 * (len - 1 - i);
            *digit = DIGITS[((value >> shift) & 0xf) as usize];
        }
        HexDigits { digits, len }
    }
}

impl std::ops::Deref for HexDigits {
    type Target = str;

    fn deref(&self) -> &str {
        std::str::from_utf8(&self.digits[..self.len]).expect("hex digits are ASCII")
    }
}
