//! SETTINGS parameters (RFC 9113 §6.5): their identifiers, the values one
//! frame carries, and the range each value must lie in.

use bytes::{BufMut, BytesMut};

use super::error::Violation;
use super::header::{DEFAULT_MAX_FRAME_SIZE, MAX_FRAME_SIZE_LIMIT};

/// The largest flow-control window, and so the largest
/// SETTINGS_INITIAL_WINDOW_SIZE (RFC 9113 §6.9.1).
pub(crate) const MAX_WINDOW_SIZE: u32 = (1 << 31) - 1;

/// The length of one parameter on the wire: a 16-bit identifier, a 32-bit
/// value.
pub(crate) const SETTING_LEN: usize = 6;

/// The parameters defined by RFC 9113 §6.5.2. Others are ignored on receipt
/// (§6.5.2: "An endpoint that receives a SETTINGS frame with any unknown or
/// unsupported identifier MUST ignore that setting").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum SettingId {
    HeaderTableSize,
    EnablePush,
    MaxConcurrentStreams,
    InitialWindowSize,
    MaxFrameSize,
    MaxHeaderListSize,
}

impl SettingId {
    /// Every known identifier, in numeric order.
    pub(crate) const ALL: [SettingId; 6] = [
        SettingId::HeaderTableSize,
        SettingId::EnablePush,
        SettingId::MaxConcurrentStreams,
        SettingId::InitialWindowSize,
        SettingId::MaxFrameSize,
        SettingId::MaxHeaderListSize,
    ];

    /// The identifier numbered `raw`, if RFC 9113 defines it.
    pub(crate) fn from_u16(raw: u16) -> Option<SettingId> {
        Some(match raw {
            0x1 => SettingId::HeaderTableSize,
            0x2 => SettingId::EnablePush,
            0x3 => SettingId::MaxConcurrentStreams,
            0x4 => SettingId::InitialWindowSize,
            0x5 => SettingId::MaxFrameSize,
            0x6 => SettingId::MaxHeaderListSize,
            _ => return None,
        })
    }

    /// The identifier's number on the wire.
    pub(crate) fn to_u16(self) -> u16 {
        match self {
            SettingId::HeaderTableSize => 0x1,
            SettingId::EnablePush => 0x2,
            SettingId::MaxConcurrentStreams => 0x3,
            SettingId::InitialWindowSize => 0x4,
            SettingId::MaxFrameSize => 0x5,
            SettingId::MaxHeaderListSize => 0x6,
        }
    }
}

/// The parameters of one SETTINGS frame: `None` for each one the frame
/// does not carry. When a frame repeats a parameter, the last value counts
/// (§6.5.3 processes them in order), so nothing is lost by keeping one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) header_table_size: Option<u32>,
    pub(crate) enable_push: Option<bool>,
    pub(crate) max_concurrent_streams: Option<u32>,
    /// At most [`MAX_WINDOW_SIZE`].
    pub(crate) initial_window_size: Option<u32>,
    /// Within 2^14 ..= 2^24 - 1.
    pub(crate) max_frame_size: Option<u32>,
    pub(crate) max_header_list_size: Option<u32>,
}

impl Settings {
    /// Reads the parameters of a SETTINGS payload, whose length the caller
    /// has checked is a multiple of [`SETTING_LEN`]. Unknown identifiers are
    /// skipped; a value out of its range is the error §6.5.2 names.
    pub(crate) fn parse(payload: &[u8]) -> Result<Settings, Violation> {
        let mut settings = Settings::default();
        for entry in payload.chunks_exact(SETTING_LEN) {
            let id = u16::from_be_bytes([entry[0], entry[1]]);
            let value = u32::from_be_bytes([entry[2], entry[3], entry[4], entry[5]]);
            if let Some(id) = SettingId::from_u16(id) {
                settings.set(id, value)?;
            }
        }
        Ok(settings)
    }

    /// Sets one parameter, checking its range.
    pub(crate) fn set(&mut self, id: SettingId, value: u32) -> Result<(), Violation> {
        match id {
            SettingId::HeaderTableSize => self.header_table_size = Some(value),
            SettingId::EnablePush => {
                self.enable_push = Some(match value {
                    0 => false,
                    1 => true,
                    _ => return Err(Violation::InvalidEnablePush { value }),
                })
            }
            SettingId::MaxConcurrentStreams => self.max_concurrent_streams = Some(value),
            SettingId::InitialWindowSize => {
                if value > MAX_WINDOW_SIZE {
                    return Err(Violation::InitialWindowTooLarge { value });
                }
                self.initial_window_size = Some(value);
            }
            SettingId::MaxFrameSize => {
                if !(DEFAULT_MAX_FRAME_SIZE..=MAX_FRAME_SIZE_LIMIT).contains(&value) {
                    return Err(Violation::InvalidMaxFrameSize { value });
                }
                self.max_frame_size = Some(value);
            }
            SettingId::MaxHeaderListSize => self.max_header_list_size = Some(value),
        }
        Ok(())
    }

    /// The value of one parameter, if set.
    pub(crate) fn get(&self, id: SettingId) -> Option<u32> {
        match id {
            SettingId::HeaderTableSize => self.header_table_size,
            SettingId::EnablePush => self.enable_push.map(u32::from),
            SettingId::MaxConcurrentStreams => self.max_concurrent_streams,
            SettingId::InitialWindowSize => self.initial_window_size,
            SettingId::MaxFrameSize => self.max_frame_size,
            SettingId::MaxHeaderListSize => self.max_header_list_size,
        }
    }

    /// The payload's length once encoded.
    pub(crate) fn encoded_len(&self) -> usize {
        SettingId::ALL.iter().filter(|&&id| self.get(id).is_some()).count() * SETTING_LEN
    }

    /// Appends the payload: each set parameter, in numeric order.
    pub(crate) fn encode_payload(&self, dst: &mut BytesMut) {
        for id in SettingId::ALL {
            if let Some(value) = self.get(id) {
                dst.put_u16(id.to_u16());
                dst.put_u32(value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u16, value: u32) -> Vec<u8> {
        let mut v = id.to_be_bytes().to_vec();
        v.extend_from_slice(&value.to_be_bytes());
        v
    }

    #[test]
    fn known_settings_are_read_and_unknown_ones_skipped() {
        let mut payload = Vec::new();
        for (id, value) in [
            (1, 4096),
            (2, 0),
            (3, 100),
            (4, 65535),
            (5, 16384),
            (6, 8192),
            (0xff, 7),
            (0, 1),
        ] {
            payload.extend(entry(id, value));
        }
        let settings = Settings::parse(&payload).unwrap();
        assert_eq!(
            settings,
            Settings {
                header_table_size: Some(4096),
                enable_push: Some(false),
                max_concurrent_streams: Some(100),
                initial_window_size: Some(65535),
                max_frame_size: Some(16384),
                max_header_list_size: Some(8192),
            }
        );
        let mut out = BytesMut::new();
        settings.encode_payload(&mut out);
        assert_eq!(out.len(), settings.encoded_len());
        assert_eq!(Settings::parse(&out).unwrap(), settings);
    }

    #[test]
    fn the_last_of_repeated_settings_counts() {
        let payload = [entry(3, 1), entry(3, 2)].concat();
        assert_eq!(Settings::parse(&payload).unwrap().max_concurrent_streams, Some(2));
    }

    #[test]
    fn enable_push_must_be_0_or_1() {
        assert_eq!(Settings::parse(&entry(2, 1)).unwrap().enable_push, Some(true));
        let err = Settings::parse(&entry(2, 2)).unwrap_err();
        assert_eq!(err, Violation::InvalidEnablePush { value: 2 });
        assert_eq!(err.code(), super::super::ErrorCode::ProtocolError);
    }

    #[test]
    fn initial_window_size_is_at_most_2_31_minus_1() {
        assert!(Settings::parse(&entry(4, MAX_WINDOW_SIZE)).is_ok());
        let err = Settings::parse(&entry(4, MAX_WINDOW_SIZE + 1)).unwrap_err();
        assert_eq!(err, Violation::InitialWindowTooLarge { value: 1 << 31 });
        assert_eq!(err.code(), super::super::ErrorCode::FlowControlError);
    }

    #[test]
    fn max_frame_size_is_within_its_range() {
        assert!(Settings::parse(&entry(5, 16_384)).is_ok());
        assert!(Settings::parse(&entry(5, 16_777_215)).is_ok());
        for bad in [0, 16_383, 16_777_216, u32::MAX] {
            let err = Settings::parse(&entry(5, bad)).unwrap_err();
            assert_eq!(err, Violation::InvalidMaxFrameSize { value: bad });
            assert_eq!(err.code(), super::super::ErrorCode::ProtocolError);
        }
    }
}
