//! Console output and IPC monitoring.

use abi::debug::{op, ChannelStats, IpcTotals, KernelAccounting, QuotaUse};
use abi::{Error, Plain};

use crate::ipc::channel::{channel_id, Channel};
use crate::ipc::named::NameTable;
use crate::kernel::Kernel;
use crate::mem::user::{self, Access};
use crate::proc::{Message, State};
use crate::syscall::Outcome;

impl Kernel {
    /// `DebugPrint`: copy the text in and write it to the console.
    pub(super) fn debug_print(&mut self, p: usize, ptr: u64, len: u64) -> Result<Outcome, Error> {
        let mut buf = [0u8; abi::limits::PRINT_LEN];
        if len as usize > buf.len() {
            return Err(Error::TooLarge);
        }
        let text = &mut buf[..len as usize];
        user::read(&self.phys, &self.space(p), ptr, text).map_err(|_| Error::BadAddress)?;
        crate::arch::console_write(text);
        Ok(Outcome::Done([0; 4]))
    }

    /// Kernel bytes one channel, one message and one name take.
    pub fn ipc_sizes() -> (u64, u64, u64) {
        (
            core::mem::size_of::<Channel>() as u64,
            core::mem::size_of::<Message>() as u64,
            NameTable::entry_bytes() as u64,
        )
    }

    /// The system-wide IPC figures.
    pub fn ipc_totals(&self) -> IpcTotals {
        let (per_channel, per_message, per_name) = Kernel::ipc_sizes();
        let channels = self.channels.live_count() as u64;
        let names = self.names.len() as u64;
        IpcTotals {
            channels,
            in_flight: self.ipc.in_flight,
            names,
            bytes_per_channel: per_channel,
            bytes_per_message: per_message,
            bytes_per_name: per_name,
            bytes_in_use: channels * per_channel + self.ipc.in_flight * per_message + names * per_name,
            messages_total: self.ipc.delivered,
            general_sends: self.ipc.general_sends,
            general_replies: self.ipc.general_replies,
            declined: self.ipc.declined,
        }
    }

    /// What is left of every resource the kernel hands out.
    pub fn accounting(&self) -> KernelAccounting {
        use crate::proc::ProcState;
        let live_procs = self.procs[..abi::limits::PROCESSES].iter().filter(|p| p.state == ProcState::Alive).count();
        let live_threads = self.threads.iter().filter(|t| !matches!(t.state, State::Free | State::Dead)).count();
        let slots = |limit: usize, used: usize| limit.saturating_sub(used) as u64;
        KernelAccounting {
            free_frames: self.frames.free_frames() as u64,
            free_processes: slots(abi::limits::PROCESSES, live_procs),
            free_threads: slots(abi::limits::THREADS, live_threads),
            free_channels: slots(abi::limits::CHANNELS, self.channels.live_count()),
            free_names: slots(abi::limits::NAMES, self.names.len()),
            free_dma: self.dma.iter().filter(|r| !r.live).count() as u64,
        }
    }

    /// Process `p`'s quota and what it uses of it.
    pub fn quota_use(&self, p: usize) -> QuotaUse {
        use crate::proc::{quota, Resource};
        let pr = &self.procs[p];
        let mut used = pr.acct.carved;
        for r in Resource::ALL {
            *quota::get_mut(&mut used, r) += pr.used(r);
        }
        QuotaUse { limit: pr.acct.limit, used }
    }

    /// `DebugIpc`.
    pub(super) fn debug_ipc(&mut self, p: usize, which: u64, a: u64, b: u64, c: u64) -> Result<Outcome, Error> {
        let space = self.space(p);
        match which {
            op::LIST_CHANNELS => {
                let (buf, max) = (a, b);
                let ids: alloc::vec::Vec<u64> = self
                    .channels
                    .live_indices()
                    .collect::<alloc::vec::Vec<_>>()
                    .into_iter()
                    .map(|i| channel_id(i, self.channels.slot(i).gen))
                    .collect();
                let n = ids.len().min(max as usize);
                for (i, id) in ids.iter().take(n).enumerate() {
                    user::write(&self.phys, &space, buf + 8 * i as u64, &id.to_le_bytes(), Access::Write)
                        .map_err(|_| Error::BadAddress)?;
                }
                Ok(Outcome::Done([ids.len() as u64, n as u64, 0, 0]))
            }
            op::CHANNEL_STATS => {
                let (id, buf) = (a, b);
                let c = self.channels.get((id & 0xffff) as u32, (id >> 32) as u32).ok_or(Error::NotFound)?;
                let stats = ChannelStats {
                    id,
                    owner: c.owner as u64,
                    sends: c.sends,
                    receives: c.receives,
                    replies: c.replies,
                    errors: c.errors,
                    peak_depth: c.peak as u64,
                    waiting_senders: c.senders.len() as u64,
                    waiting_receivers: c.receivers.len() as u64,
                    in_flight: c.in_flight as u64,
                };
                user::write(&self.phys, &space, buf, stats.as_bytes(), Access::Write).map_err(|_| Error::BadAddress)?;
                Ok(Outcome::Done([0; 4]))
            }
            op::CHANNEL_NAME => {
                let (id, buf, max) = (a, b, c);
                let (index, gen) = ((id & 0xffff) as u16, (id >> 32) as u32);
                self.channels.get(index as u32, gen).ok_or(Error::NotFound)?;
                let name = self.names.name_of(index, gen).unwrap_or(&[]);
                let n = name.len().min(max as usize);
                user::write(&self.phys, &space, buf, &name[..n], Access::Write).map_err(|_| Error::BadAddress)?;
                Ok(Outcome::Done([name.len() as u64, 0, 0, 0]))
            }
            op::TRACE => {
                self.ipc.trace = a != 0;
                // No hint holds while tracing: the assembly fast path,
                // which traces nothing, relies on it (`cap::hint`).
                crate::cap::hint::invalidate_all();
                crate::info!("ipc: tracing {}", if a != 0 { "on" } else { "off" });
                Ok(Outcome::Done([0; 4]))
            }
            op::TOTALS => {
                let totals = self.ipc_totals();
                user::write(&self.phys, &space, a, totals.as_bytes(), Access::Write).map_err(|_| Error::BadAddress)?;
                Ok(Outcome::Done([0; 4]))
            }
            op::KERNEL_ACCOUNTING => {
                let acc = self.accounting();
                user::write(&self.phys, &space, a, acc.as_bytes(), Access::Write).map_err(|_| Error::BadAddress)?;
                Ok(Outcome::Done([0; 4]))
            }
            op::QUOTA => {
                let q = self.quota_use(p);
                user::write(&self.phys, &space, a, q.as_bytes(), Access::Write).map_err(|_| Error::BadAddress)?;
                Ok(Outcome::Done([0; 4]))
            }
            op::ADDRESS_SPACE => Ok(Outcome::Done([crate::arch::read_cr3(), self.pcid.bits(), 0, 0])),
            _ => Err(Error::InvalidArgument),
        }
    }
}
