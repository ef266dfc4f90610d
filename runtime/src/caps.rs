//! The capabilities the program was started with.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use abi::start::InitCap;
use abi::call::{DeriveArgs, NoArgs, ScopeArgs};
use abi::{cap_id, RightsMask, SyscallClass};

use crate::sys::calls;

/// As many as a start block can name: a process holds at most
/// `CAPS_PER_PROCESS` capabilities, and a spawner rarely passes more.
const MAX: usize = 64;

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);
static IDS: [AtomicU64; MAX] = [ZERO; MAX];
static TOKENS: [AtomicU64; MAX] = [ZERO; MAX];
static COUNT: AtomicUsize = AtomicUsize::new(0);
/// The syscall-class tokens by class number, found once at start: every
/// syscall names one, so looking it up must not scan the list above.
const CLASSES: usize = 16;
static CLASS_TOKENS: [AtomicU64; CLASSES] = [ZERO; CLASSES];

/// Remember the start capabilities (called once by `_start`).
pub fn install(caps: impl Iterator<Item = InitCap>) {
    let mut n = 0;
    for c in caps {
        if n == MAX {
            crate::println!("runtime: more than {MAX} start capabilities; the rest are ignored");
            break;
        }
        IDS[n].store(c.id, Ordering::Relaxed);
        TOKENS[n].store(c.token, Ordering::Relaxed);
        // As `init_cap`: the first token under an id is the one.
        let class = c.id.wrapping_sub(cap_id::CLASS_BASE);
        if class < CLASSES as u64 && CLASS_TOKENS[class as usize].load(Ordering::Relaxed) == 0 {
            CLASS_TOKENS[class as usize].store(c.token, Ordering::Relaxed);
        }
        n += 1;
    }
    COUNT.store(n, Ordering::Release);
}

/// The token given at start under `id`.
pub fn init_cap(id: u64) -> Option<u64> {
    (0..COUNT.load(Ordering::Acquire))
        .find(|&i| IDS[i].load(Ordering::Relaxed) == id)
        .map(|i| TOKENS[i].load(Ordering::Relaxed))
}

/// All start capabilities as `(id, token)`.
pub fn all() -> impl Iterator<Item = InitCap> {
    (0..COUNT.load(Ordering::Acquire))
        .map(|i| InitCap { id: IDS[i].load(Ordering::Relaxed), token: TOKENS[i].load(Ordering::Relaxed) })
}

/// The token for a syscall class, or 0 (which the kernel refuses) if the
/// program was not given it.
#[inline]
pub fn class_token(c: SyscallClass) -> u64 {
    // (Release/Acquire through `COUNT` in `install`, as for `init_cap`.)
    CLASS_TOKENS[c as usize % CLASSES].load(Ordering::Relaxed)
}

/// This program's own process capability, or 0.
pub fn self_process() -> u64 {
    init_cap(cap_id::SELF_PROCESS).unwrap_or(0)
}

/// What a token is: `(kind, rights, object id, flavour)`.
pub fn inspect(token: u64) -> Result<(abi::CapKind, u32, u64, u8), abi::Error> {
    let r = calls::CAP_INSPECT.call(token, NoArgs {})?;
    Ok((abi::CapKind::from_raw(r.kind).ok_or(abi::Error::InvalidArgument)?, r.rights as u32, r.id, r.flavor as u8))
}

/// A copy of `token` with only the rights in `mask`.
pub fn derive(token: u64, mask: impl Into<RightsMask>) -> Result<u64, abi::Error> {
    calls::CAP_DERIVE.call(token, DeriveArgs { rights: mask.into() }).map(|r| r.value)
}

/// A `Names` capability from `names` scoped to `provider` (empty: find
/// only); the kernel refuses (`Incapable`) anything wider than `names`.
pub fn names_scope(names: u64, provider: &str) -> Result<u64, abi::Error> {
    let args = ScopeArgs { provider_ptr: provider.as_ptr() as u64, provider_len: provider.len() as u64 };
    calls::NAMES_SCOPE.call(names, args).map(|r| r.value)
}

/// Forget a capability.
pub fn drop_cap(token: u64) -> Result<(), abi::Error> {
    calls::CAP_DROP.call(token, NoArgs {}).map(|_| ())
}
