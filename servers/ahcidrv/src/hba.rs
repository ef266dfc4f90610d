//! The HBA layer: PCI function set-up (memory decode, bus mastering, MSI),
//! AHCI mode, port start, and commands completed by interrupt.
//!
//! Registers are reached through the `volatile` crate over the mapped ABAR
//! and configuration-space pages. Each disk port has one DMA page for its
//! command list, received FISes and command table ([`crate::ata`] offsets)
//! and one DMA page of data. A client's lent page is read into and written
//! from directly (`DmaAddr` tells the driver where it is); a copied message
//! goes through the data page instead. One command is in flight at a time;
//! its completion is the MSI event on the driver's private IRQ channel,
//! with a timeout.

use alloc::vec::Vec;
use core::sync::atomic::{fence, Ordering};

use abi::{Error, PAGE_SIZE};
use runtime::ipc::{Channel, Window};
use runtime::irq::{event_badge, Irq};
use runtime::mem::{dma_alloc, reserve, PhysRange};
use runtime::time::{sleep_ms, uptime_ms};
use volatile::Volatile;

use crate::ata::{self, Identity};
use crate::proto::StorageError;

/// How long a command may take before it is reported as [`StorageError::Timeout`].
pub const COMMAND_TIMEOUT_MS: u64 = 5000;

// HBA registers.
const CAP: usize = 0x00;
const GHC: usize = 0x04;
const IS: usize = 0x08;
const PI: usize = 0x0c;
const CAP2: usize = 0x24;
const BOHC: usize = 0x28;
const GHC_AE: u32 = 1 << 31;
const GHC_IE: u32 = 1 << 1;
// Port registers (offsets within a port's 0x80 bytes).
const P_CLB: usize = 0x00;
const P_CLBU: usize = 0x04;
const P_FB: usize = 0x08;
const P_FBU: usize = 0x0c;
const P_IS: usize = 0x10;
const P_IE: usize = 0x14;
const P_CMD: usize = 0x18;
const P_TFD: usize = 0x20;
const P_SIG: usize = 0x24;
const P_SSTS: usize = 0x28;
const P_SERR: usize = 0x30;
const P_CI: usize = 0x38;
const CMD_ST: u32 = 1 << 0;
const CMD_FRE: u32 = 1 << 4;
const CMD_FR: u32 = 1 << 14;
const CMD_CR: u32 = 1 << 15;
/// PxIS error bits: task-file error, host bus fatal/data, interface fatal.
const IS_ERRORS: u32 = 1 << 30 | 1 << 29 | 1 << 28 | 1 << 27;
/// Interrupts the driver wants: D2H register, PIO setup, DMA setup, set
/// device bits, and the errors.
const IE_BITS: u32 = 0b1111 | IS_ERRORS;
const TFD_BSY: u32 = 1 << 7;
const TFD_DRQ: u32 = 1 << 3;
const TFD_ERR: u32 = 1 << 0;

/// A mapped 4 KiB register page, 32-bit accesses only.
pub struct Regs(Volatile<&'static mut [u32]>);

impl Regs {
    /// Map 4 KiB of `range` at `offset`.
    pub fn map(range: &PhysRange, offset: u64) -> Result<Regs, Error> {
        let va = reserve(PAGE_SIZE as u64);
        range.map(va, offset, PAGE_SIZE as u64, abi::MapFlags::READ | abi::MapFlags::WRITE)?;
        // SAFETY: `va` is a fresh, page-aligned mapping of 4 KiB of device
        // registers that nothing else in this program refers to; it stays
        // mapped for the life of the program.
        Ok(Regs(Volatile::new(unsafe { core::slice::from_raw_parts_mut(va as *mut u32, 1024) })))
    }

    pub fn r(&self, off: usize) -> u32 {
        self.0.index(off / 4).read()
    }

    pub fn w(&mut self, off: usize, v: u32) {
        self.0.index_mut(off / 4).write(v)
    }
}

/// A DMA page mapped into the driver.
struct DmaPage {
    va: u64,
    pa: u64,
}

impl DmaPage {
    fn new() -> Result<DmaPage, Error> {
        let (range, pa) = dma_alloc(1)?;
        let va = reserve(PAGE_SIZE as u64);
        range.map(va, 0, PAGE_SIZE as u64, abi::MapFlags::READ | abi::MapFlags::WRITE)?;
        Ok(DmaPage { va, pa })
    }

    fn bytes(&mut self) -> &mut [u8; PAGE_SIZE] {
        // SAFETY: `va` maps this page, owned by `self` alone; the device
        // writes it only while a command runs, and the driver reads it
        // after completion (with a fence).
        unsafe { &mut *(self.va as *mut [u8; PAGE_SIZE]) }
    }

    fn put_u32s(&mut self, at: usize, v: &[u32]) {
        for (i, x) in v.iter().enumerate() {
            self.bytes()[at + 4 * i..at + 4 * i + 4].copy_from_slice(&x.to_le_bytes());
        }
    }
}

/// One attached SATA disk.
pub struct Disk {
    pub port: u8,
    pub id: Identity,
    /// Transfers that went straight to or from a client's lent page.
    pub direct: u64,
    cmd: DmaPage,
    data: DmaPage,
}

impl Disk {
    /// The data page (read results, write source) when the client's
    /// message is not a lent page.
    pub fn data(&mut self) -> &mut [u8; PAGE_SIZE] {
        self.data.bytes()
    }

    /// The data page's physical address.
    pub fn data_pa(&self) -> u64 {
        self.data.pa
    }
}

/// Why the controller could not be brought up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    Kernel(Error),
    /// The function has no MSI capability.
    NoMsi,
    /// The BIOS did not give the HBA up in time.
    Handoff,
}

impl From<Error> for InitError {
    fn from(e: Error) -> Self {
        InitError::Kernel(e)
    }
}

/// The controller.
pub struct Hba {
    regs: Regs,
    irq: Irq,
    irq_chan: Channel,
    window: Window,
    pub disks: Vec<Disk>,
    /// Interrupt events received (for tests and the benchmark).
    pub events: u64,
}

fn port_reg(port: u8, off: usize) -> usize {
    0x100 + 0x80 * port as usize + off
}

/// Poll `cond` every millisecond for up to `ms` (set-up only: commands
/// complete by interrupt).
fn wait_until(ms: u64, mut cond: impl FnMut() -> bool) -> bool {
    let end = uptime_ms() + ms;
    loop {
        if cond() {
            return true;
        }
        if uptime_ms() >= end {
            return false;
        }
        let _ = sleep_ms(1);
    }
}

/// Find capability `id` in a configuration space.
fn find_cap(cfg: &Regs, id: u8) -> Option<usize> {
    if cfg.r(0x04) >> 16 & (1 << 4) == 0 {
        return None;
    }
    let mut ptr = (cfg.r(0x34) & 0xfc) as usize;
    for _ in 0..48 {
        if ptr < 0x40 {
            return None;
        }
        let head = cfg.r(ptr);
        if head as u8 == id {
            return Some(ptr);
        }
        ptr = (head >> 8 & 0xfc) as usize;
    }
    None
}

impl Hba {
    /// Set up the PCI function (config space `cfg`), take the HBA (ABAR),
    /// route its MSI to `irq`, start every port with a disk and IDENTIFY
    /// each; returns the controller with its disks.
    pub fn init(abar: &PhysRange, cfg: &PhysRange, irq: Irq) -> Result<Hba, InitError> {
        let mut cfg = Regs::map(cfg, 0)?;
        // Memory decode, bus master, INTx off: interrupts come by MSI.
        let cmd = cfg.r(0x04) & 0xffff;
        cfg.w(0x04, cmd | 1 << 1 | 1 << 2 | 1 << 10);
        let msi = find_cap(&cfg, 0x05).ok_or(InitError::NoMsi)?;
        let (irq, target) = {
            let (addr, data) = irq_target(&irq)?;
            (irq, (addr, data))
        };
        let ctrl = cfg.r(msi) >> 16;
        cfg.w(msi + 4, target.0 as u32);
        if ctrl & (1 << 7) != 0 {
            cfg.w(msi + 8, (target.0 >> 32) as u32);
            cfg.w(msi + 12, target.1 as u32);
        } else {
            cfg.w(msi + 8, target.1 as u32);
        }
        // Enable, one vector.
        let head = cfg.r(msi) & 0xffff;
        cfg.w(msi, head | ((ctrl & !(0b111 << 4)) | 1) << 16);

        let mut regs = Regs::map(abar, 0)?;
        if regs.r(CAP2) & 1 != 0 {
            // BIOS/OS handoff (AHCI 1.3.1 §10.6.3).
            regs.w(BOHC, regs.r(BOHC) | 1 << 1);
            if !wait_until(25, || regs.r(BOHC) & 1 == 0) {
                return Err(InitError::Handoff);
            }
            if regs.r(BOHC) & 1 << 4 != 0 {
                wait_until(2000, || regs.r(BOHC) & 1 << 4 == 0);
            }
        }
        regs.w(GHC, regs.r(GHC) | GHC_AE);
        let irq_chan = Channel::create()?;
        irq.bind(&irq_chan, 0)?;
        let mut hba = Hba { regs, irq, irq_chan, window: Window::new()?, disks: Vec::new(), events: 0 };
        let ports = hba.regs.r(PI);
        let np = (hba.regs.r(CAP) & 0x1f) + 1;
        let mut found = Vec::new();
        for p in 0..32u8 {
            if ports & 1 << p != 0 && (p as u32) < np.max(32) {
                if let Some(d) = hba.start_port(p)? {
                    found.push(d);
                }
            }
        }
        hba.regs.w(IS, u32::MAX);
        let ghc = hba.regs.r(GHC);
        hba.regs.w(GHC, ghc | GHC_IE);
        for (cmd, data, p) in found {
            let mut d = Disk { port: p, id: Identity::default(), direct: 0, cmd, data };
            match hba.identify(&mut d) {
                Ok(id) => {
                    d.id = id;
                    hba.disks.push(d);
                }
                Err(e) => runtime::println!("ahcidrv: port {p}: IDENTIFY failed: {e:?}"),
            }
        }
        Ok(hba)
    }

    fn pr(&self, p: u8, off: usize) -> u32 {
        self.regs.r(port_reg(p, off))
    }

    fn pw(&mut self, p: u8, off: usize, v: u32) {
        self.regs.w(port_reg(p, off), v)
    }

    /// Stop port `p`, give it its DMA areas, start it if a disk is there.
    fn start_port(&mut self, p: u8) -> Result<Option<(DmaPage, DmaPage, u8)>, InitError> {
        let cmd = self.pr(p, P_CMD);
        self.pw(p, P_CMD, cmd & !(CMD_ST | CMD_FRE));
        if !wait_until(500, || self.pr(p, P_CMD) & (CMD_CR | CMD_FR) == 0) {
            runtime::println!("ahcidrv: port {p}: does not stop, skipped");
            return Ok(None);
        }
        let present = |ssts: u32| ssts & 0xf == 3 && ssts >> 8 & 0xf == 1;
        if !present(self.pr(p, P_SSTS)) {
            return Ok(None);
        }
        let cmdpage = DmaPage::new()?;
        let data = DmaPage::new()?;
        let clb = cmdpage.pa + ata::CLB as u64;
        let fb = cmdpage.pa + ata::FB as u64;
        self.pw(p, P_CLB, clb as u32);
        self.pw(p, P_CLBU, (clb >> 32) as u32);
        self.pw(p, P_FB, fb as u32);
        self.pw(p, P_FBU, (fb >> 32) as u32);
        self.pw(p, P_SERR, u32::MAX);
        self.pw(p, P_IS, u32::MAX);
        let cmd = self.pr(p, P_CMD);
        self.pw(p, P_CMD, cmd | CMD_FRE);
        // The signature arrives with the first D2H FIS once FRE is on.
        wait_until(100, || self.pr(p, P_TFD) & (TFD_BSY | TFD_DRQ) == 0 && self.pr(p, P_SIG) != u32::MAX);
        match self.pr(p, P_SIG) {
            ata::SIG_ATA => {}
            ata::SIG_ATAPI => {
                runtime::println!("ahcidrv: port {p}: ATAPI device (not a disk), skipped");
                self.pw(p, P_CMD, self.pr(p, P_CMD) & !CMD_FRE);
                return Ok(None);
            }
            sig => {
                runtime::println!("ahcidrv: port {p}: signature {sig:#x}, skipped");
                self.pw(p, P_CMD, self.pr(p, P_CMD) & !CMD_FRE);
                return Ok(None);
            }
        }
        self.pw(p, P_IS, u32::MAX);
        self.pw(p, P_IE, IE_BITS);
        let cmd = self.pr(p, P_CMD);
        self.pw(p, P_CMD, cmd | CMD_ST);
        Ok(Some((cmdpage, data, p)))
    }

    fn identify(&mut self, d: &mut Disk) -> Result<Identity, StorageError> {
        let pa = d.data.pa;
        self.command(d, ata::IDENTIFY, 0, 0, (pa, 512), false)?;
        let mut raw = [0u8; 512];
        raw.copy_from_slice(&d.data()[..512]);
        Ok(ata::identify(&ata::words(&raw)))
    }

    /// Run one command on disk `d` moving `buf` = (physical address, bytes)
    /// (`write`: to the device), and wait for its interrupt.
    pub fn command(&mut self, d: &mut Disk, command: u8, lba: u64, count: u16, buf: (u64, usize), write: bool) -> Result<(), StorageError> {
        let (buf_pa, bytes) = buf;
        let p = d.port;
        if self.pr(p, P_SSTS) & 0xf != 3 {
            return Err(StorageError::Gone);
        }
        if !wait_until(COMMAND_TIMEOUT_MS, || self.pr(p, P_TFD) & (TFD_BSY | TFD_DRQ) == 0) {
            return Err(StorageError::Timeout);
        }
        let prdtl = if bytes > 0 { 1 } else { 0 };
        let table = d.cmd.pa + ata::CTBA as u64;
        d.cmd.bytes()[ata::CLB..ata::CLB + 32].fill(0);
        d.cmd.put_u32s(ata::CLB, &ata::command_header(write, prdtl, table));
        d.cmd.bytes()[ata::CTBA..ata::PRDT + 16].fill(0);
        d.cmd.bytes()[ata::CTBA..ata::CTBA + 20].copy_from_slice(&ata::h2d_fis(command, lba, count));
        if bytes > 0 {
            let entry = ata::prd(buf_pa, bytes).map_err(|_| StorageError::BadRequest)?;
            d.cmd.put_u32s(ata::PRDT, &entry);
        }
        self.pw(p, P_IS, u32::MAX);
        // The command's memory is written before the HBA is told to fetch it.
        fence(Ordering::SeqCst);
        self.pw(p, P_CI, 1);
        self.wait(p)
    }

    /// Wait for the interrupt that ends port `p`'s command.
    fn wait(&mut self, p: u8) -> Result<(), StorageError> {
        let end = uptime_ms() + COMMAND_TIMEOUT_MS;
        loop {
            let left = end.saturating_sub(uptime_ms());
            if left == 0 {
                return Err(StorageError::Timeout);
            }
            match self.irq_chan.receive(&mut self.window, left * 1_000_000) {
                Ok(r) if event_badge(&r).is_some() => {}
                Ok(_) => continue, // nobody else may send here (private channel)
                Err(Error::Timeout) => return Err(StorageError::Timeout),
                Err(_) => return Err(StorageError::Gone),
            }
            self.events += 1;
            let is = self.pr(p, P_IS);
            self.pw(p, P_IS, is);
            let his = self.regs.r(IS);
            self.regs.w(IS, his);
            let _ = self.irq.ack();
            fence(Ordering::SeqCst);
            let tfd = self.pr(p, P_TFD);
            if is & IS_ERRORS != 0 || (self.pr(p, P_CI) & 1 == 0 && tfd & TFD_ERR != 0) {
                // Restart the port's engine so the next command can run.
                let cmd = self.pr(p, P_CMD);
                self.pw(p, P_CMD, cmd & !CMD_ST);
                wait_until(500, || self.pr(p, P_CMD) & CMD_CR == 0);
                self.pw(p, P_SERR, u32::MAX);
                self.pw(p, P_IS, u32::MAX);
                let cmd = self.pr(p, P_CMD);
                self.pw(p, P_CMD, cmd | CMD_ST);
                return Err(StorageError::DeviceError { status: tfd as u8, error: (tfd >> 8) as u8 });
            }
            if self.pr(p, P_CI) & 1 == 0 {
                return Ok(());
            }
            if self.pr(p, P_SSTS) & 0xf != 3 {
                return Err(StorageError::Gone);
            }
        }
    }
}

/// The MSI address and data of `irq`: `CapInspect` tells an IRQ
/// capability's vector and the APIC id it targets.
fn irq_target(irq: &Irq) -> Result<(u64, u16), Error> {
    let (_, _, vector, apic_id) = runtime::caps::inspect(irq.0)?;
    Ok((abi::irq::msi_address(apic_id), vector as u16))
}
