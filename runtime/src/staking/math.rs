//! `a * b / c` on balances without losing the high bits of the product.
//!
//! Staking multiplies balances by share counts, basis points and the reward scale (10^18), so the
//! products do not fit a `u128`. The product is formed in 256 bits (as two `u128` halves) and
//! divided back down; the result is refused (`None`) when it does not fit a `u128` or the divisor
//! is zero, so callers decide what an impossible amount means instead of wrapping.

/// The 256-bit product of `a` and `b` as `(high, low)`.
fn wide_mul(a: u128, b: u128) -> (u128, u128) {
    const HALF: u32 = 64;
    const MASK: u128 = u64::MAX as u128;
    let (a_hi, a_lo) = (a >> HALF, a & MASK);
    let (b_hi, b_lo) = (b >> HALF, b & MASK);
    // Each partial product of two 64-bit halves fits 128 bits, and the sums below stay under
    // 2^128 (three terms below 2^64 each, or a high half plus carries), so the wrapping forms
    // never wrap; they only state that to the overflow lint.
    let lo_lo = a_lo.wrapping_mul(b_lo);
    let lo_hi = a_lo.wrapping_mul(b_hi);
    let hi_lo = a_hi.wrapping_mul(b_lo);
    let hi_hi = a_hi.wrapping_mul(b_hi);
    let middle = (lo_lo >> HALF).wrapping_add(lo_hi & MASK).wrapping_add(hi_lo & MASK);
    let low = (lo_lo & MASK) | (middle << HALF);
    let high =
        hi_hi.wrapping_add(lo_hi >> HALF).wrapping_add(hi_lo >> HALF).wrapping_add(middle >> HALF);
    (high, low)
}

/// `(a * b) / c` and `(a * b) % c`, or `None` if `c` is zero or the quotient does not fit.
fn div_rem(a: u128, b: u128, c: u128) -> Option<(u128, u128)> {
    if c == 0 {
        return None;
    }
    let (high, low) = wide_mul(a, b);
    if high == 0 {
        return Some((low.checked_div(c)?, low.checked_rem(c)?));
    }
    if high >= c {
        return None;
    }
    // Long division, one bit of `low` at a time, keeping the remainder below `c`. The remainder
    // starts as `high` (< c), so the quotient fits 128 bits.
    let mut remainder = high;
    let mut quotient: u128 = 0;
    for bit in (0..128u32).rev() {
        let carry = remainder >> 127;
        remainder = (remainder << 1) | ((low >> bit) & 1);
        quotient <<= 1;
        // With the carry, the true remainder is 2^128 + `remainder` >= c, and the difference is
        // below c; wrapping subtraction computes exactly that difference.
        if carry == 1 || remainder >= c {
            remainder = remainder.wrapping_sub(c);
            quotient |= 1;
        }
    }
    Some((quotient, remainder))
}

/// `floor(a * b / c)`, or `None` if `c` is zero or the result does not fit a `u128`.
pub fn mul_div(a: u128, b: u128, c: u128) -> Option<u128> {
    div_rem(a, b, c).map(|(quotient, _)| quotient)
}

/// `ceil(a * b / c)`, or `None` if `c` is zero or the result does not fit a `u128`.
pub fn mul_div_ceil(a: u128, b: u128, c: u128) -> Option<u128> {
    let (quotient, remainder) = div_rem(a, b, c)?;
    if remainder == 0 { Some(quotient) } else { quotient.checked_add(1) }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(mul_div(u128::MAX, u128::MAX, u128::MAX), Some(u128::MAX));
        assert_eq!(mul_div(u128::MAX, 2, 4), Some(u128::MAX / 2));
        assert_eq!(mul_div(u128::MAX, 2, 1), None);
        assert_eq!(mul_div(1, 1, 0), None);
        assert_eq!(mul_div(10, 10, 3), Some(33));
        assert_eq!(mul_div_ceil(10, 10, 3), Some(34));
        assert_eq!(mul_div_ceil(10, 10, 5), Some(20));
        assert_eq!(mul_div_ceil(u128::MAX, u128::MAX, u128::MAX), Some(u128::MAX));
        // 2^127 * 2^127 / 2^126 = 2^128: one past the largest u128.
        assert_eq!(mul_div(1 << 127, 1 << 127, 1 << 126), None);
        assert_eq!(mul_div(1 << 127, 1 << 127, 1 << 127), Some(1 << 127));
        let scale = 1_000_000_000_000_000_000u128;
        assert_eq!(mul_div(7 * scale, scale, scale), Some(7 * scale));
    }

    proptest! {
        /// Where the product fits, the result is plain integer arithmetic.
        #[test]
        fn matches_u128_when_the_product_fits(a in any::<u64>(), b in any::<u64>(), c in 1..u128::MAX) {
            let product = u128::from(a) * u128::from(b);
            prop_assert_eq!(mul_div(a.into(), b.into(), c), Some(product / c));
            let ceil = product / c + u128::from(product % c != 0);
            prop_assert_eq!(mul_div_ceil(a.into(), b.into(), c), Some(ceil));
        }

        /// q = floor(ab / c) is the one number with q*c <= ab < (q+1)*c, checked in 256 bits.
        #[test]
        fn quotient_and_remainder_reconstruct_the_product(a in any::<u128>(), b in any::<u128>(), c in 1..=u128::MAX) {
            match div_rem(a, b, c) {
                Some((q, r)) => {
                    prop_assert!(r < c);
                    // q*c + r == a*b in 256 bits.
                    let (qc_high, qc_low) = wide_mul(q, c);
                    let (low, carry) = qc_low.overflowing_add(r);
                    let high = qc_high + u128::from(carry);
                    prop_assert_eq!((high, low), wide_mul(a, b));
                }
                None => {
                    // The quotient does not fit: a*b >= 2^128 * c.
                    let (high, _) = wide_mul(a, b);
                    prop_assert!(high >= c);
                }
            }
        }

        /// Multiplication by the identity and swapping the factors change nothing.
        #[test]
        fn symmetric_and_identity(a in any::<u128>(), b in any::<u128>(), c in 1..=u128::MAX) {
            prop_assert_eq!(mul_div(a, b, c), mul_div(b, a, c));
            prop_assert_eq!(mul_div(a, c, c), Some(a));
        }
    }
}
