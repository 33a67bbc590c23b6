//! Flow control (RFC 9113 §5.2 and §6.9): the windows of a connection and
//! of each stream, in both directions, with the RFC's overflow rules, and
//! the receiver's policy for when to send WINDOW_UPDATE.

/// The largest a flow-control window may be: 2^31 − 1 (§6.9.1).
pub(crate) const MAX_WINDOW: i64 = (1 << 31) - 1;

/// The window every stream and the connection start with, before SETTINGS
/// change it: 65,535 bytes (§6.9.2).
pub(crate) const DEFAULT_WINDOW: u32 = 65_535;

/// Flow control was broken: the peer sent more than its window allowed,
/// or a WINDOW_UPDATE (or SETTINGS_INITIAL_WINDOW_SIZE change) took a
/// window past 2^31 − 1. Both are FLOW_CONTROL_ERROR; whether of the
/// stream or the connection is the caller's to say, by which window broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FlowError {
    /// DATA beyond what the window allowed.
    Exceeded { window: i64, received: u32 },
    /// A window grew past 2^31 − 1.
    Overflow,
}

/// The window for what we send: what the peer has allowed. It can go
/// negative when the peer lowers SETTINGS_INITIAL_WINDOW_SIZE (§6.9.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SendWindow(i64);

impl SendWindow {
    pub(crate) fn new(initial: u32) -> SendWindow {
        SendWindow(i64::from(initial))
    }

    /// Bytes that may be sent now.
    pub(crate) fn available(&self) -> usize {
        self.0.max(0) as usize
    }

    /// Takes `bytes` of the window for DATA about to go out. The caller
    /// sends no more than [`SendWindow::available`].
    pub(crate) fn consume(&mut self, bytes: usize) {
        debug_assert!(bytes <= self.available(), "sent past the window");
        self.0 -= bytes as i64;
    }

    /// The peer's WINDOW_UPDATE.
    pub(crate) fn grow(&mut self, increment: u32) -> Result<(), FlowError> {
        self.shift(i64::from(increment))
    }

    /// SETTINGS_INITIAL_WINDOW_SIZE changed from `old` to `new`: every
    /// stream's window moves by the difference, and may go negative.
    pub(crate) fn resize(&mut self, old: u32, new: u32) -> Result<(), FlowError> {
        self.shift(i64::from(new) - i64::from(old))
    }

    fn shift(&mut self, by: i64) -> Result<(), FlowError> {
        let next = self.0 + by;
        if next > MAX_WINDOW {
            return Err(FlowError::Overflow);
        }
        self.0 = next;
        Ok(())
    }
}

/// The window for what we receive: what we have allowed the peer, and
/// what of it the application has taken, so that capacity goes back only
/// as received bytes are consumed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RecvWindow {
    /// What the peer may still send.
    window: i64,
    /// Received and consumed bytes not yet given back by WINDOW_UPDATE.
    unannounced: u32,
    /// The window we aim to keep open: our SETTINGS_INITIAL_WINDOW_SIZE
    /// for a stream, or the connection's target.
    target: u32,
}

impl RecvWindow {
    pub(crate) fn new(target: u32) -> RecvWindow {
        RecvWindow {
            window: i64::from(target),
            unannounced: 0,
            target,
        }
    }

    /// The peer sent `bytes` of DATA (padding included, §6.9.1).
    pub(crate) fn receive(&mut self, bytes: u32) -> Result<(), FlowError> {
        if i64::from(bytes) > self.window {
            return Err(FlowError::Exceeded {
                window: self.window,
                received: bytes,
            });
        }
        self.window -= i64::from(bytes);
        Ok(())
    }

    /// The application took `bytes` of what was received. Returns the
    /// increment to announce in a WINDOW_UPDATE now, if it is worth one:
    /// once at least half the target is waiting to go back, so that
    /// updates are few but the peer never stalls on a window it could use.
    pub(crate) fn consume(&mut self, bytes: u32) -> Option<u32> {
        self.unannounced = self.unannounced.saturating_add(bytes);
        if self.unannounced < self.target.div_ceil(2).max(1) {
            return None;
        }
        self.announce()
    }

    /// Everything consumed and not yet given back, as one increment.
    /// Raises the window and its target by `delta` without announcing it:
    /// for a stream's window when this side raised
    /// SETTINGS_INITIAL_WINDOW_SIZE, which the peer applies itself.
    pub(crate) fn raise_initial(&mut self, delta: u32) {
        self.window = (self.window + i64::from(delta)).min(MAX_WINDOW);
        self.target = self.target.saturating_add(delta);
    }

    /// How many more consumed bytes make [`RecvWindow::consume`] announce.
    pub(crate) fn until_update(&self) -> u32 {
        self.target.div_ceil(2).max(1).saturating_sub(self.unannounced).max(1)
    }

    pub(crate) fn announce(&mut self) -> Option<u32> {
        let room = (MAX_WINDOW - self.window).max(0) as u32;
        let increment = self.unannounced.min(room);
        self.unannounced = 0;
        if increment == 0 {
            return None;
        }
        self.window += i64::from(increment);
        Some(increment)
    }

    /// Raises the target (BDP estimation, a larger setting): the increment
    /// that opens the window to it at once, if any.
    pub(crate) fn set_target(&mut self, target: u32) -> Option<u32> {
        let grow = target.saturating_sub(self.target);
        self.target = target;
        if grow == 0 {
            return None;
        }
        self.unannounced = self.unannounced.saturating_add(grow);
        self.announce()
    }

    /// What the peer may still send.
    pub(crate) fn window(&self) -> i64 {
        self.window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sending_takes_the_window_and_updates_give_it_back() {
        let mut w = SendWindow::new(DEFAULT_WINDOW);
        w.consume(65_535);
        assert_eq!(w.available(), 0);
        w.grow(1000).unwrap();
        assert_eq!(w.available(), 1000);
    }

    #[test]
    fn a_window_past_two_to_the_31_minus_1_is_an_overflow() {
        let mut w = SendWindow::new(DEFAULT_WINDOW);
        assert_eq!(w.grow((MAX_WINDOW - 65_535) as u32), Ok(()));
        assert_eq!(w.grow(1), Err(FlowError::Overflow));
        assert_eq!(w.available(), MAX_WINDOW as usize, "a failed update changes nothing");
    }

    #[test]
    fn lowering_the_initial_window_can_make_a_stream_window_negative() {
        let mut w = SendWindow::new(DEFAULT_WINDOW);
        w.consume(60_000);
        w.resize(DEFAULT_WINDOW, 16_384).unwrap();
        assert_eq!(w.available(), 0, "negative: nothing may be sent");
        w.grow(50_000).unwrap();
        assert_eq!(w.available(), 6_384, "65,535 - 60,000 - 49,151 + 50,000");
        let mut big = SendWindow::new(DEFAULT_WINDOW);
        assert_eq!(big.resize(DEFAULT_WINDOW, u32::MAX), Err(FlowError::Overflow));
    }

    #[test]
    fn data_beyond_the_receive_window_is_a_flow_control_error() {
        let mut w = RecvWindow::new(1000);
        w.receive(600).unwrap();
        assert_eq!(
            w.receive(401),
            Err(FlowError::Exceeded {
                window: 400,
                received: 401
            })
        );
        w.receive(400).unwrap();
        assert_eq!(w.window(), 0);
    }

    #[test]
    fn capacity_goes_back_once_half_the_target_is_consumed() {
        let mut w = RecvWindow::new(1000);
        w.receive(1000).unwrap();
        assert_eq!(w.consume(300), None, "a small update is not worth a frame");
        assert_eq!(w.consume(200), Some(500));
        assert_eq!(w.window(), 500);
        assert_eq!(w.consume(100), None);
        assert_eq!(w.announce(), Some(100), "announce gives back the rest");
        assert_eq!(w.announce(), None);
    }

    #[test]
    fn receiving_does_not_give_capacity_back_before_consumption() {
        let mut w = RecvWindow::new(100);
        w.receive(100).unwrap();
        assert_eq!(w.window(), 0, "held until the application takes the bytes");
        assert!(w.receive(1).is_err());
    }

    #[test]
    fn raising_the_target_opens_the_window_at_once() {
        let mut w = RecvWindow::new(DEFAULT_WINDOW);
        assert_eq!(w.set_target(1 << 20), Some((1 << 20) - DEFAULT_WINDOW));
        assert_eq!(w.window(), 1 << 20);
        assert_eq!(w.set_target(1000), None, "lowering takes effect as bytes come back");
    }
}
