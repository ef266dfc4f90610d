//! Quotas: what each process may hold, and who gave it that.
//!
//! A creator's allowance is *carved*: the threads, pages, channels and
//! processes it gives a child leave its own remaining budget until the child
//! ends, so a child (and its children, and theirs) can never take more of
//! the machine than its creator was willing to part with, and the sum over
//! all live processes never exceeds what `system` got at boot (the whole
//! machine). Carving rather than merely capping is what stops a process from
//! escaping its quota by creating children that each get "as much as mine".
//! Capabilities are only capped by the creator's limit: every process has a
//! table of its own (charged to its pages), so they draw on no shared pool.
//!
//! Use is counted where it is already known (`Process::threads`,
//! `channels`, the capability table's length); pages have their own counter
//! because many paths allocate frames (anonymous memory, page tables, DMA,
//! the process's own tables).

use abi::quota::Quota;

/// One kind of thing a quota limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    Threads,
    Pages,
    Channels,
    Caps,
    Processes,
}

impl Resource {
    pub const ALL: [Resource; 5] = [Resource::Threads, Resource::Pages, Resource::Channels, Resource::Caps, Resource::Processes];

    /// Whether a creator's budget of this pays for its children's (see the module docs).
    pub fn carved(self) -> bool {
        self != Resource::Caps
    }
}

/// The field of `q` for `r`.
pub fn get(q: &Quota, r: Resource) -> u64 {
    match r {
        Resource::Threads => q.threads,
        Resource::Pages => q.pages,
        Resource::Channels => q.channels,
        Resource::Caps => q.caps,
        Resource::Processes => q.processes,
    }
}

/// The field of `q` for `r`, to change.
pub fn get_mut(q: &mut Quota, r: Resource) -> &mut u64 {
    match r {
        Resource::Threads => &mut q.threads,
        Resource::Pages => &mut q.pages,
        Resource::Channels => &mut q.channels,
        Resource::Caps => &mut q.caps,
        Resource::Processes => &mut q.processes,
    }
}

/// What a child with quota `q` takes from its creator's budget: the carved
/// fields, plus the child's own process slot.
pub fn carve_cost(q: &Quota) -> Quota {
    Quota { caps: 0, processes: q.processes.saturating_add(1), ..*q }
}

/// A process's quota and the part of it that is spent on children.
#[derive(Clone, Copy, Debug, Default)]
pub struct Account {
    pub limit: Quota,
    /// Sum of [`carve_cost`] over its live children.
    pub carved: Quota,
    /// Frames it uses itself (anonymous memory, page tables, DMA regions,
    /// its capability table).
    pub pages: u64,
    /// The process its budget was carved from, `(index, generation)`; `None`
    /// for a process that got the whole machine.
    pub creator: Option<(u8, u32)>,
}

impl Account {
    /// How much more of `r` fits, given `used` of it in use by the process itself.
    pub fn room(&self, r: Resource, used: u64) -> u64 {
        get(&self.limit, r).saturating_sub(get(&self.carved, r).saturating_add(used))
    }

    /// Take `cost` from the carved budget (after checking it fits).
    pub fn carve(&mut self, cost: &Quota) {
        for r in Resource::ALL {
            let f = get_mut(&mut self.carved, r);
            *f = f.saturating_add(get(cost, r));
        }
    }

    /// Give back what [`Self::carve`] took.
    pub fn uncarve(&mut self, cost: &Quota) {
        for r in Resource::ALL {
            let f = get_mut(&mut self.carved, r);
            *f = f.saturating_sub(get(cost, r));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_counts_children_and_own_use() {
        let mut a = Account { limit: Quota { threads: 10, pages: 100, channels: 5, caps: 20, processes: 3 }, ..Default::default() };
        assert_eq!(a.room(Resource::Pages, 30), 70);
        let child = Quota { threads: 4, pages: 50, channels: 5, caps: 20, processes: 1 };
        let cost = carve_cost(&child);
        assert_eq!(cost.processes, 2, "the child itself takes a process");
        assert_eq!(cost.caps, 0, "capabilities are capped, not carved");
        a.carve(&cost);
        assert_eq!(a.room(Resource::Pages, 30), 20);
        assert_eq!(a.room(Resource::Pages, 60), 0, "over-use saturates at no room");
        assert_eq!(a.room(Resource::Channels, 0), 0);
        assert_eq!(a.room(Resource::Caps, 3), 17);
        assert_eq!(a.room(Resource::Processes, 0), 1);
        a.uncarve(&cost);
        assert_eq!(a.carved, Quota::default());
    }
}
