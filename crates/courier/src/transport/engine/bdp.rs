//! Receive windows sized by the bandwidth-delay product, as grpc-go does:
//! when DATA arrives and no sample is being taken, a PING goes out; the
//! bytes received until its ACK are what the link carries in one round
//! trip. A sample that nearly fills the window means the window is the
//! limit, and it grows to twice the sample, up to a ceiling.

/// The largest window the estimator sets: 16 MiB, as grpc-go.
pub(crate) const MAX_BDP_WINDOW: u32 = 16 * 1024 * 1024;

/// The 8 opaque bytes that mark a BDP PING, so its ACK is told apart
/// from keepalive PINGs.
pub(crate) const BDP_PING: [u8; 8] = *b"courbdp\0";

/// What the estimator asks of the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BdpAction {
    /// Nothing.
    None,
    /// Send a PING with [`BDP_PING`] now.
    SendPing,
    /// Set the connection's and new streams' receive window to this.
    Grow(u32),
}

/// One connection's estimator.
#[derive(Debug)]
pub(crate) struct BdpEstimator {
    /// The window in force.
    window: u32,
    /// Bytes received since the sampling PING went out, while one is out.
    sampling: Option<Sample>,
}

#[derive(Debug)]
struct Sample {
    bytes: u64,
}

impl BdpEstimator {
    pub(crate) fn new(window: u32) -> BdpEstimator {
        BdpEstimator { window, sampling: None }
    }

    /// DATA of `bytes` arrived.
    pub(crate) fn data(&mut self, bytes: usize) -> BdpAction {
        if self.window >= MAX_BDP_WINDOW {
            return BdpAction::None;
        }
        match &mut self.sampling {
            Some(sample) => {
                sample.bytes += bytes as u64;
                BdpAction::None
            }
            None => {
                self.sampling = Some(Sample { bytes: bytes as u64 });
                BdpAction::SendPing
            }
        }
    }

    /// The BDP PING's ACK arrived.
    pub(crate) fn ack(&mut self) -> BdpAction {
        let Some(sample) = self.sampling.take() else {
            return BdpAction::None;
        };
        // Only a sample that filled most of the window says the window,
        // not the sender, was the limit.
        if sample.bytes * 3 < u64::from(self.window) * 2 {
            return BdpAction::None;
        }
        let grown = (sample.bytes * 2).min(u64::from(MAX_BDP_WINDOW)) as u32;
        if grown <= self.window {
            return BdpAction::None;
        }
        self.window = grown;
        BdpAction::Grow(grown)
    }

    /// The window in force.
    #[cfg(test)]
    pub(crate) fn window(&self) -> u32 {
        self.window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_that_fills_the_window_doubles_it() {
        let mut bdp = BdpEstimator::new(65_535);
        assert_eq!(bdp.data(16_384), BdpAction::SendPing);
        assert_eq!(bdp.data(16_384), BdpAction::None, "one sample at a time");
        bdp.data(16_384);
        bdp.data(16_383);
        assert_eq!(bdp.ack(), BdpAction::Grow(131_070));
        assert_eq!(bdp.window(), 131_070);
    }

    #[test]
    fn a_sample_well_below_the_window_changes_nothing() {
        let mut bdp = BdpEstimator::new(1 << 20);
        bdp.data(1000);
        assert_eq!(bdp.ack(), BdpAction::None);
        assert_eq!(bdp.window(), 1 << 20);
    }

    #[test]
    fn the_window_stops_at_sixteen_mib_and_sampling_stops_with_it() {
        let mut bdp = BdpEstimator::new(12 * 1024 * 1024);
        bdp.data(12 * 1024 * 1024);
        assert_eq!(bdp.ack(), BdpAction::Grow(MAX_BDP_WINDOW));
        assert_eq!(bdp.data(1), BdpAction::None, "no more samples at the ceiling");
    }

    #[test]
    fn an_ack_without_a_sample_is_ignored() {
        let mut bdp = BdpEstimator::new(65_535);
        assert_eq!(bdp.ack(), BdpAction::None);
    }

    #[test]
    fn bdp_pings_are_told_apart_from_zeroed_keepalive_pings() {
        assert_ne!(BDP_PING, [0; 8]);
    }
}
