//! When to restart a server that ended, and when to give up.
//!
//! A restartable server that ends is started again after a delay that
//! doubles with each end in quick succession (`first_delay_ms`, twice that,
//! ... up to `max_delay_ms`). If it ends more than `max_restarts` times
//! within `window_ms` it is *held*: left stopped and reported, so a server
//! that crashes at start cannot keep the machine busy for ever. A server
//! that then runs for a whole window has its count forgotten.

use alloc::collections::VecDeque;

/// The limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub first_delay_ms: u64,
    pub max_delay_ms: u64,
    pub max_restarts: usize,
    pub window_ms: u64,
}

impl Policy {
    /// What `system` uses.
    pub const DEFAULT: Policy = Policy { first_delay_ms: 10, max_delay_ms: 1000, max_restarts: 4, window_ms: 5000 };
}

/// What to do with a server that just ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Start it again at this uptime (ms).
    RestartAt(u64),
    /// Leave it stopped.
    Hold,
}

/// The ends of one server.
#[derive(Clone, Debug)]
pub struct History {
    policy: Policy,
    /// Uptimes (ms) of the ends inside the window.
    recent: VecDeque<u64>,
    /// Restarts so far, in all.
    pub restarts: u32,
}

impl History {
    pub fn new(policy: Policy) -> History {
        History { policy, recent: VecDeque::new(), restarts: 0 }
    }

    /// The server ended at uptime `now_ms`: restart it, and when, or hold.
    pub fn ended(&mut self, now_ms: u64) -> Decision {
        while self.recent.front().is_some_and(|&t| now_ms.saturating_sub(t) >= self.policy.window_ms) {
            self.recent.pop_front();
        }
        self.recent.push_back(now_ms);
        let n = self.recent.len();
        if n > self.policy.max_restarts {
            return Decision::Hold;
        }
        let delay = self.policy.first_delay_ms.saturating_mul(1u64 << (n - 1).min(32)).min(self.policy.max_delay_ms);
        self.restarts += 1;
        Decision::RestartAt(now_ms + delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Policy = Policy { first_delay_ms: 10, max_delay_ms: 50, max_restarts: 4, window_ms: 1000 };

    #[test]
    fn delays_double_up_to_the_cap_then_hold() {
        let mut h = History::new(P);
        assert_eq!(h.ended(100), Decision::RestartAt(110));
        assert_eq!(h.ended(120), Decision::RestartAt(140));
        assert_eq!(h.ended(150), Decision::RestartAt(190));
        assert_eq!(h.ended(200), Decision::RestartAt(250), "capped at max_delay");
        assert_eq!(h.ended(260), Decision::Hold, "fifth end inside the window");
        assert_eq!(h.restarts, 4);
    }

    #[test]
    fn a_server_that_runs_a_whole_window_starts_over() {
        let mut h = History::new(P);
        for t in [0, 10, 20, 30] {
            assert!(matches!(h.ended(t), Decision::RestartAt(_)));
        }
        // Long after: the old ends no longer count, the delay is the first again.
        assert_eq!(h.ended(5000), Decision::RestartAt(5010));
        assert_eq!(h.restarts, 5);
    }

    #[test]
    fn ends_spread_out_are_never_held() {
        let mut h = History::new(P);
        for i in 0..100 {
            // Ends 300 ms apart: at most four inside any 1000 ms window.
            let delay = [10, 20, 40].get(i as usize).copied().unwrap_or(50);
            assert_eq!(h.ended(i * 300), Decision::RestartAt(i * 300 + delay), "end {i}");
        }
    }
}
