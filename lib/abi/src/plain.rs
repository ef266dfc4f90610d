//! Plain data: types that may be copied to and from raw bytes.
//!
//! The kernel writes some structures into user memory as bytes, and user
//! space receives them the same way. Viewing a value as bytes is sound only
//! if it has no padding (padding bytes are uninitialised), and filling one
//! from bytes only if every byte pattern is a valid value. [`Plain`] marks
//! the types where both hold; [`plain!`](crate::plain) implements it for a
//! `repr(C)` struct only after checking, at compile time, that the fields
//! listed are exactly the struct's fields, are themselves `Plain`, and fill
//! its size with no byte to spare.

/// A type with no padding whose every byte pattern is a valid value.
///
/// # Safety
/// Implement only for integers, arrays of `Plain` types, and structs of
/// `Plain` fields with no padding (use [`plain!`](crate::plain), which
/// checks that).
pub unsafe trait Plain: Copy + 'static {
    /// The value's bytes, in memory order.
    fn as_bytes(&self) -> &[u8] {
        // SAFETY: `Self: Plain` has no padding, so all `size_of` bytes are
        // initialised; the slice borrows `self`.
        unsafe { core::slice::from_raw_parts(self as *const Self as *const u8, core::mem::size_of::<Self>()) }
    }

    /// The value's bytes, writable: any bytes written make a valid value.
    fn as_bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_bytes`, and every byte pattern is a valid
        // `Self`; the slice borrows `self` mutably.
        unsafe { core::slice::from_raw_parts_mut(self as *mut Self as *mut u8, core::mem::size_of::<Self>()) }
    }
}

// SAFETY: integers have no padding and no invalid bit patterns.
unsafe impl Plain for u8 {}
// SAFETY: as for `u8`.
unsafe impl Plain for u16 {}
// SAFETY: as for `u8`.
unsafe impl Plain for u32 {}
// SAFETY: as for `u8`.
unsafe impl Plain for u64 {}
// SAFETY: elements of an array follow each other with no gap, and each is
// `Plain`.
unsafe impl<T: Plain, const N: usize> Plain for [T; N] {}

/// Implement [`Plain`] for a struct, listing every field with its type.
/// It fails to compile if a field is missing from the list or not `Plain`,
/// a type is wrong, or the struct has padding.
///
/// ```
/// #[derive(Clone, Copy)]
/// #[repr(C)]
/// struct Point { x: u32, y: u32 }
/// abi::plain!(Point { x: u32, y: u32 });
/// ```
///
/// Padding is refused (here 7 bytes after `small`):
/// ```compile_fail
/// #[derive(Clone, Copy)]
/// #[repr(C)]
/// struct Point { small: u8, x: u64 }
/// abi::plain!(Point { small: u8, x: u64 });
/// ```
///
/// So is leaving a field out (which would hide padding or a pointer):
/// ```compile_fail
/// #[derive(Clone, Copy)]
/// #[repr(C)]
/// struct Point { x: u32, y: u32 }
/// abi::plain!(Point { x: u32 });
/// ```
///
/// And a field that is not plain data (a `bool` has invalid bit patterns):
/// ```compile_fail
/// #[derive(Clone, Copy)]
/// #[repr(C)]
/// struct Flag { on: bool, pad: [u8; 7], x: u64 }
/// abi::plain!(Flag { on: bool, pad: [u8; 7], x: u64 });
/// ```
#[macro_export]
macro_rules! plain {
    ($t:ident { $($f:ident : $ft:ty),* $(,)? }) => {
        const _: () = {
            // Exactly these fields, with these types, each `Plain`.
            #[allow(dead_code)]
            fn fields(v: $t) {
                fn plain<T: $crate::Plain>(_: T) {}
                let $t { $($f),* } = v;
                $(plain::<$ft>($f);)*
            }
            // And nothing else in the struct: no padding.
            assert!(
                core::mem::size_of::<$t>() == 0 $(+ core::mem::size_of::<$ft>())*,
                concat!(stringify!($t), " has padding: it cannot be Plain")
            );
        };
        // SAFETY: checked above: every field is `Plain` and they fill the
        // struct with no padding.
        unsafe impl $crate::Plain for $t {}
    };
}

#[cfg(test)]
mod tests {
    use super::Plain;

    #[derive(Clone, Copy, Debug, Default, PartialEq)]
    #[repr(C)]
    struct Pair {
        a: u32,
        b: [u8; 4],
        c: u64,
    }
    crate::plain!(Pair { a: u32, b: [u8; 4], c: u64 });

    #[test]
    fn bytes_round_trip_in_memory_order() {
        let p = Pair { a: 0x0403_0201, b: [5, 6, 7, 8], c: 0x100f_0e0d_0c0b_0a09 };
        let bytes: std::vec::Vec<u8> = p.as_bytes().to_vec();
        assert_eq!(bytes, (1..=16).collect::<std::vec::Vec<u8>>());
        let mut q = Pair::default();
        q.as_bytes_mut().copy_from_slice(&bytes);
        assert_eq!(q, p);
    }
}
