//! The one mutable kernel, lent out one scope at a time.
//!
//! The bare-metal kernel keeps its state in a single static. Handing out
//! `&'static mut` to it left every entry path responsible for never holding
//! two at once, with nothing to catch a mistake. A [`KernelCell`] lends
//! `&mut` only for the length of a closure ([`KernelCell::with`]) and marks
//! itself lent meanwhile, so a second `with` before the first returns (a
//! nested call, a fault or interrupt handler reaching the kernel) panics
//! instead of creating a second mutable reference. Hubris guards its task
//! table the same way.
//!
//! The reference cannot outlive the closure, and the flag is cleared when
//! the closure returns (or unwinds, on the host). The arch code therefore
//! ends every scope before it switches to another thread's stack or returns
//! to user mode (`sysret`, `iret`), and checks that it did before each
//! switch: no thread ever leaves the kernel with the cell lent.
//!
//! The check costs a decrement, a branch and a byte store per kernel entry.

use core::cell::{Cell, UnsafeCell};
use core::mem::MaybeUninit;

/// Where the cell is in its life. Lending is one decrement (`FREE` to
/// `LENT`) whose result must be zero, so the check and the mark are a
/// single instruction and a branch on every kernel entry.
mod state {
    /// A `with` closure holds the only reference.
    pub const LENT: u8 = 0;
    /// Installed, and no reference lent out.
    pub const FREE: u8 = 1;
    /// Nothing installed yet.
    pub const EMPTY: u8 = 2;
}
use state::{EMPTY, FREE, LENT};

/// A value lent out mutably to one scope at a time.
pub struct KernelCell<T> {
    state: Cell<u8>,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: the bare-metal kernel runs on one core with interrupts disabled
// except in the idle loop, which holds no reference; `with` refuses a second
// reference while one is lent, so sharing the cell never shares a `&mut`.
// The host build (tests) is multi-threaded and gets no `Sync`.
#[cfg(target_os = "none")]
unsafe impl<T> Sync for KernelCell<T> {}

impl<T> Default for KernelCell<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> KernelCell<T> {
    /// Where the value is in the cell, for the assembly fast path
    /// (`arch::x86_64::fastpath`), which reads and writes the kernel
    /// without a scope: it runs only from a syscall entry, where no scope
    /// can be open.
    pub const VALUE_AT: usize = core::mem::offset_of!(Self, value);

    /// An empty cell: `with` panics until [`Self::install`].
    pub const fn new() -> Self {
        KernelCell { state: Cell::new(EMPTY), value: UnsafeCell::new(MaybeUninit::uninit()) }
    }

    /// Put the value in (once).
    pub fn install(&self, value: T) {
        assert!(self.state.get() == EMPTY, "kernel installed twice");
        // SAFETY: the cell is empty, so no reference into it exists.
        unsafe { (*self.value.get()).write(value) };
        self.state.set(FREE);
    }

    /// Run `f` with the only mutable reference to the value.
    ///
    /// # Panics
    /// If the value is not installed, or a reference is already lent out
    /// (re-entry).
    #[inline(always)]
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let now = self.state.get().wrapping_sub(1);
        self.state.set(now);
        if now != LENT {
            self.refuse();
        }
        let _lent = Release(&self.state);
        // SAFETY: the state was `FREE` (installed, nothing lent) and is
        // `LENT` until `_lent` drops after `f`, so this is the only
        // reference, and it cannot escape `f` (its lifetime is the call's).
        f(unsafe { (*self.value.get()).assume_init_mut() })
    }

    /// Whether a `with` closure is running.
    #[inline(always)]
    pub fn is_lent(&self) -> bool {
        self.state.get() == LENT
    }

    #[cold]
    #[inline(never)]
    fn refuse(&self) -> ! {
        // Undo the decrement: the state stays what it was.
        let was = self.state.get().wrapping_add(1);
        self.state.set(was);
        match was {
            EMPTY => panic!("kernel used before it was installed"),
            _ => panic!("kernel re-entered: a reference to it is already lent out"),
        }
    }
}

/// Frees the cell when the scope ends, on return or unwind.
struct Release<'a>(&'a Cell<u8>);

impl Drop for Release<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        self.0.set(FREE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lends_one_scope_at_a_time() {
        let cell = KernelCell::new();
        cell.install(1u32);
        assert!(!cell.is_lent());
        cell.with(|v| {
            *v += 1;
        });
        // The first scope ended, so a second one is fine and sees its work.
        let seen = cell.with(|v| {
            *v += 1;
            *v
        });
        assert_eq!(seen, 3);
        assert!(cell.with(|_| cell.is_lent()));
        assert!(!cell.is_lent());
    }

    #[test]
    #[should_panic(expected = "kernel re-entered")]
    fn re_entry_panics() {
        let cell = KernelCell::new();
        cell.install(0u32);
        cell.with(|_outer| cell.with(|_inner| ()));
    }

    #[test]
    #[should_panic(expected = "before it was installed")]
    fn use_before_install_panics() {
        KernelCell::<u32>::new().with(|_| ());
    }

    #[test]
    #[should_panic(expected = "installed twice")]
    fn install_twice_panics() {
        let cell = KernelCell::new();
        cell.install(0u32);
        cell.with(|_| cell.install(1));
    }

    #[test]
    fn a_panic_in_the_scope_frees_the_cell() {
        let cell = KernelCell::new();
        cell.install(0u32);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cell.with(|_| panic!("inside"))));
        assert!(r.is_err());
        assert!(!cell.is_lent());
        assert_eq!(cell.with(|v| *v), 0);
    }
}
