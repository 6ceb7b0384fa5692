//! The service's wire format: frame header, payload layouts, every decoder error, and the
//! replay of the frame fuzz target's seed corpus.

#[expect(dead_code, reason = "this suite draws images, not classifiers")]
mod service_support;

use std::io::{self, Read};
use std::path::PathBuf;

use heist::oracle::{Image, ImageError, Scores, CLASSES, IMAGE_PIXELS};
use heist::service::frame::{
    Frame, FrameError, Header, Kind, ReadError, HEADER_LEN, MAGIC, VERSION,
};
use heist::service::message::{
    self, ErrorCode, ErrorReply, PayloadError, Setup, COUNT_BYTES, IMAGE_BYTES, MAX_ERROR_MESSAGE,
};
use heist::service::{decode_untrusted, Scheme, UNTRUSTED_MAX_PAYLOAD};
use heist_tests::seeded_rng;
use proptest::prelude::*;
use service_support::random_image;

fn header_bytes(kind: u8, version: u16, reserved: u8, id: u64, len: u32) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&version.to_le_bytes());
    out.push(kind);
    out.push(reserved);
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out
}

#[test]
fn header_layout_is_pinned() {
    let header = Header {
        kind: Kind::Scores,
        request_id: 0x0102_0304_0506_0708,
        payload_len: 0x0a0b_0c0d,
    };
    let expected: [u8; HEADER_LEN] = [
        b'H', b'E', b'I', b'S', 1, 0, 2, 0, 8, 7, 6, 5, 4, 3, 2, 1, 0x0d, 0x0c, 0x0b, 0x0a,
    ];
    assert_eq!(header.encode(), expected);
    assert_eq!(Header::decode(&expected, u32::MAX), Ok(header));
}

#[test]
fn every_kind_round_trips_and_no_other_byte_is_a_kind() {
    for byte in 0..=u8::MAX {
        match Kind::from_byte(byte) {
            Some(kind) => {
                assert_eq!(kind as u8, byte);
                let frame = Frame {
                    kind,
                    request_id: u64::from(byte),
                    payload: vec![byte; 3],
                };
                let bytes = frame.encode().expect("small payload");
                assert_eq!(Frame::decode(&bytes, 3), Ok((frame, bytes.len())));
            }
            None => assert!(!(1..=7).contains(&byte), "byte {byte} should be a kind"),
        }
    }
    assert_eq!(Kind::ALL.len(), 7);
}

proptest! {
    #[test]
    fn frames_round_trip(kind in 0usize..7, id in any::<u64>(), payload in proptest::collection::vec(any::<u8>(), 0..300), trailing in proptest::collection::vec(any::<u8>(), 0..30)) {
        let frame = Frame { kind: Kind::ALL[kind], request_id: id, payload };
        let mut bytes = frame.encode().expect("small payload");
        let used = bytes.len();
        bytes.extend_from_slice(&trailing);
        prop_assert_eq!(Frame::decode(&bytes, 300), Ok((frame.clone(), used)));
        let read = Frame::read_from(&mut bytes.as_slice(), 300).expect("a whole frame");
        prop_assert_eq!(read, frame);
    }
}

#[test]
fn header_errors_are_checked_in_order() {
    let ok = header_bytes(1, VERSION, 0, 5, 10);
    let decode = |bytes: &[u8], max| Frame::decode(bytes, max).map(|(f, _)| f.kind);
    // Magic first: a frame wrong in every field reports the magic.
    let mut all_wrong = header_bytes(0, 9, 1, 5, 1000);
    all_wrong[0] = b'X';
    assert_eq!(
        decode(&all_wrong, 10),
        Err(FrameError::BadMagic { found: *b"XEIS" })
    );
    assert_eq!(
        decode(&header_bytes(0, 9, 1, 5, 1000), 10),
        Err(FrameError::UnsupportedVersion { found: 9 })
    );
    assert_eq!(
        decode(&header_bytes(0, VERSION, 1, 5, 1000), 10),
        Err(FrameError::UnknownKind { found: 0 })
    );
    assert_eq!(
        decode(&header_bytes(8, VERSION, 1, 5, 1000), 10),
        Err(FrameError::UnknownKind { found: 8 })
    );
    assert_eq!(
        decode(&header_bytes(1, VERSION, 1, 5, 1000), 10),
        Err(FrameError::ReservedNonZero { found: 1 })
    );
    assert_eq!(
        decode(&header_bytes(1, VERSION, 0, 5, 11), 10),
        Err(FrameError::PayloadTooLarge { len: 11, max: 10 })
    );
    // The length is checked before the payload is looked for.
    assert_eq!(
        decode(&header_bytes(1, VERSION, 0, 5, u32::MAX), 10),
        Err(FrameError::PayloadTooLarge {
            len: u64::from(u32::MAX),
            max: 10
        })
    );
    assert_eq!(
        decode(&ok[..HEADER_LEN - 1], 10),
        Err(FrameError::Truncated {
            needed: HEADER_LEN,
            available: HEADER_LEN - 1
        })
    );
    let mut short_payload = ok.clone();
    short_payload.extend_from_slice(&[0; 9]);
    assert_eq!(
        decode(&short_payload, 10),
        Err(FrameError::Truncated {
            needed: HEADER_LEN + 10,
            available: HEADER_LEN + 9
        })
    );
    short_payload.push(0);
    assert_eq!(decode(&short_payload, 10), Ok(Kind::Query));
}

#[test]
fn header_refuses_a_payload_longer_than_u32() {
    let len = usize::try_from(u64::from(u32::MAX) + 1).expect("64-bit host");
    assert_eq!(
        Header::new(Kind::Evaluate, 1, len),
        Err(FrameError::PayloadTooLarge {
            len: u64::from(u32::MAX) + 1,
            max: u64::from(u32::MAX)
        })
    );
}

#[test]
fn frame_errors_name_the_offending_values() {
    assert_eq!(
        FrameError::BadMagic { found: *b"GET " }.to_string(),
        "bad magic [47, 45, 54, 20], expected [48, 45, 49, 53]"
    );
    assert_eq!(
        FrameError::PayloadTooLarge { len: 11, max: 10 }.to_string(),
        "payload of 11 bytes exceeds the maximum of 10"
    );
    assert_eq!(
        FrameError::UnsupportedVersion { found: 2 }.to_string(),
        "unsupported protocol version 2, this build speaks 1"
    );
}

/// A reader that hands out its bytes in small pieces, then fails with `error`.
struct Scripted {
    bytes: Vec<u8>,
    at: usize,
    error: Option<io::ErrorKind>,
    interruptions: usize,
}

impl Read for Scripted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.interruptions > 0 {
            self.interruptions -= 1;
            return Err(io::ErrorKind::Interrupted.into());
        }
        let rest = &self.bytes[self.at..];
        if rest.is_empty() {
            return match self.error {
                Some(kind) => Err(kind.into()),
                None => Ok(0),
            };
        }
        let n = rest.len().min(buf.len()).min(7);
        buf[..n].copy_from_slice(&rest[..n]);
        self.at += n;
        Ok(n)
    }
}

fn scripted(bytes: Vec<u8>, error: Option<io::ErrorKind>) -> Scripted {
    Scripted {
        bytes,
        at: 0,
        error,
        interruptions: 2,
    }
}

#[test]
fn reading_from_a_stream_reports_each_way_it_can_end() {
    let frame = Frame {
        kind: Kind::Evaluate,
        request_id: 3,
        payload: (0..100).collect(),
    };
    let bytes = frame.encode().expect("small payload");
    // Small pieces and interruptions still give the whole frame.
    let read = Frame::read_from(&mut scripted(bytes.clone(), None), 100).expect("whole frame");
    assert_eq!(read, frame);
    assert!(matches!(
        Frame::read_from(&mut scripted(Vec::new(), None), 100),
        Err(ReadError::Closed)
    ));
    assert!(matches!(
        Frame::read_from(&mut scripted(bytes[..5].to_vec(), None), 100),
        Err(ReadError::Truncated {
            got: 5,
            expected: HEADER_LEN
        })
    ));
    assert!(matches!(
        Frame::read_from(&mut scripted(bytes[..50].to_vec(), None), 100),
        Err(ReadError::Truncated {
            got: 50,
            expected: 120
        })
    ));
    assert!(matches!(
        Frame::read_from(&mut scripted(bytes.clone(), None), 99),
        Err(ReadError::Frame(FrameError::PayloadTooLarge {
            len: 100,
            max: 99
        }))
    ));
    for kind in [io::ErrorKind::WouldBlock, io::ErrorKind::TimedOut] {
        assert!(matches!(
            Frame::read_from(&mut scripted(bytes[..30].to_vec(), Some(kind)), 100),
            Err(ReadError::TimedOut)
        ));
    }
    assert!(matches!(
        Frame::read_from(&mut scripted(bytes[..3].to_vec(), Some(io::ErrorKind::ConnectionReset)), 100),
        Err(ReadError::Io(e)) if e.kind() == io::ErrorKind::ConnectionReset
    ));
}

#[test]
fn images_round_trip_bit_for_bit() {
    let mut rng = seeded_rng("service_frame::images", 1);
    let images: Vec<Image> = (0..5).map(|_| random_image(&mut rng)).collect();
    let payload = message::encode_images(&images).expect("five images");
    assert_eq!(payload.len(), COUNT_BYTES + 5 * IMAGE_BYTES);
    assert_eq!(message::decode_images(&payload, 5), Ok(images));
}

#[test]
fn image_payload_errors() {
    let one = |value: f32| {
        let mut p = 1u32.to_le_bytes().to_vec();
        p.extend((0..IMAGE_PIXELS).flat_map(|_| value.to_le_bytes()));
        p
    };
    assert_eq!(
        message::decode_images(&[1, 0], 4),
        Err(PayloadError::TooShort {
            needed: 4,
            found: 2
        })
    );
    assert_eq!(
        message::decode_images(&0u32.to_le_bytes(), 4),
        Err(PayloadError::Empty)
    );
    assert_eq!(
        message::decode_images(&5u32.to_le_bytes(), 4),
        Err(PayloadError::TooMany { count: 5, max: 4 })
    );
    assert_eq!(
        message::decode_images(&u32::MAX.to_le_bytes(), usize::MAX),
        Err(PayloadError::LengthMismatch {
            count: u64::from(u32::MAX),
            expected: u64::from(u32::MAX) * IMAGE_BYTES as u64 + 4,
            found: 4
        })
    );
    let mut long = one(0.5);
    long.push(0);
    assert_eq!(
        message::decode_images(&long, 4),
        Err(PayloadError::LengthMismatch {
            count: 1,
            expected: 4 + IMAGE_BYTES as u64,
            found: 5 + IMAGE_BYTES
        })
    );
    for bad in [1.5, -0.25, f32::NAN, f32::INFINITY] {
        match message::decode_images(&one(bad), 4) {
            Err(PayloadError::Image {
                image: 0,
                error: ImageError::PixelOutOfRange { index: 0, value },
            }) => assert!(value.to_bits() == bad.to_bits()),
            other => panic!("{bad}: {other:?}"),
        }
    }
    assert!(message::decode_images(&one(1.0), 1).is_ok());
    assert!(message::decode_images(&one(0.0), 1).is_ok());
    assert_eq!(message::encode_images(&[]), Err(PayloadError::Empty));
}

#[test]
fn scores_round_trip_and_refuse_non_finite_values() {
    let scores: Vec<Scores> = (0..3)
        .map(|i| core::array::from_fn(|c| i as f32 * 10.0 - c as f32 * 0.5))
        .collect();
    let payload = message::encode_scores(&scores).expect("finite");
    assert_eq!(message::decode_scores(&payload, 3), Ok(scores.clone()));
    assert_eq!(
        message::decode_scores(&payload, 2),
        Err(PayloadError::TooMany { count: 3, max: 2 })
    );
    let mut bad = scores;
    bad[2][7] = f32::NEG_INFINITY;
    assert_eq!(
        message::encode_scores(&bad),
        Err(PayloadError::NonFiniteScore {
            index: 2,
            class: 7,
            value: f32::NEG_INFINITY
        })
    );
    let mut payload = 1u32.to_le_bytes().to_vec();
    payload.extend((0..CLASSES).flat_map(|c| if c == 4 { f32::NAN } else { 0.0 }.to_le_bytes()));
    assert!(matches!(
        message::decode_scores(&payload, 1),
        Err(PayloadError::NonFiniteScore { index: 0, class: 4, value }) if value.is_nan()
    ));
}

#[test]
fn setup_round_trips_for_every_scheme_and_refuses_unknown_ones() {
    for scheme in Scheme::ALL {
        let setup = Setup {
            scheme,
            context: vec![scheme.id(); 5],
        };
        assert_eq!(Setup::decode(&setup.encode()), Ok(setup));
        assert_eq!(Scheme::from_id(scheme.id()), Some(scheme));
    }
    assert_eq!(
        Setup::decode(&[]),
        Err(PayloadError::TooShort {
            needed: 1,
            found: 0
        })
    );
    assert_eq!(
        Setup::decode(&[3, 1]),
        Err(PayloadError::UnknownScheme { found: 3 })
    );
    assert_eq!(message::expect_empty(&[]), Ok(()));
    assert_eq!(
        message::expect_empty(&[0]),
        Err(PayloadError::NotEmpty { len: 1 })
    );
}

#[test]
fn error_replies_round_trip_and_are_bounded() {
    for code in ErrorCode::ALL {
        let reply = ErrorReply::new(code, format!("code {code:?}: é"));
        assert_eq!(ErrorReply::decode(&reply.encode()), Ok(reply));
        assert_eq!(ErrorCode::from_u16(code as u16), Some(code));
    }
    assert_eq!(ErrorCode::from_u16(0), None);
    // Cut at a character boundary: 'é' is two bytes, so 1023 bytes of 'a' + 'é' → 1023.
    let long = ErrorReply::new(
        ErrorCode::Evaluation,
        "a".repeat(MAX_ERROR_MESSAGE - 1) + "é",
    );
    assert_eq!(long.message.len(), MAX_ERROR_MESSAGE - 1);
    let mut too_long = (ErrorCode::BadFrame as u16).to_le_bytes().to_vec();
    too_long.extend(std::iter::repeat_n(b'a', MAX_ERROR_MESSAGE + 1));
    assert_eq!(
        ErrorReply::decode(&too_long),
        Err(PayloadError::MessageTooLong {
            len: MAX_ERROR_MESSAGE + 1
        })
    );
    assert_eq!(
        ErrorReply::decode(&[1]),
        Err(PayloadError::TooShort {
            needed: 2,
            found: 1
        })
    );
    assert_eq!(
        ErrorReply::decode(&[99, 0]),
        Err(PayloadError::UnknownErrorCode { found: 99 })
    );
    assert_eq!(
        ErrorReply::decode(&[1, 0, b'o', b'k', 0xff]),
        Err(PayloadError::InvalidUtf8 { valid_up_to: 2 })
    );
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/frame")
}

/// Every seed of the frame fuzz target, replayed through the same entry point, with the
/// outcome its name announces: `<decoder>-ok-*` / `<decoder>-bad-*` for a frame whose
/// payload that decoder accepts / refuses, or the frame error's name.
#[test]
fn fuzz_seed_corpus_replays_with_the_announced_outcome() {
    let mut seeds: Vec<_> = std::fs::read_dir(corpus_dir())
        .expect("the seed corpus is committed")
        .map(|entry| entry.expect("readable entry").path())
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 20, "only {} seeds", seeds.len());
    for path in seeds {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("UTF-8 name")
            .to_owned();
        let data = std::fs::read(&path).expect("readable seed");
        let outcome = decode_untrusted(&data);
        let mut parts = name.splitn(3, '-');
        let (first, second) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        match (first, &outcome) {
            ("images" | "scores" | "setup" | "error" | "empty", Ok(decoded)) => {
                let accepted = decoded.accepted_by.contains(&first);
                assert_eq!(accepted, second == "ok", "{name}: {decoded:?}");
                // What decodes re-encodes to the bytes it came from (the fuzz target's check).
                let again = decoded.frame.encode().expect("bounded payload");
                assert_eq!(&data[..decoded.used], again.as_slice(), "{name}");
            }
            ("magic", Err(FrameError::BadMagic { .. }))
            | ("version", Err(FrameError::UnsupportedVersion { .. }))
            | ("kind", Err(FrameError::UnknownKind { .. }))
            | ("reserved", Err(FrameError::ReservedNonZero { .. }))
            | ("truncated", Err(FrameError::Truncated { .. })) => {}
            ("large", Err(FrameError::PayloadTooLarge { max, .. })) => {
                assert_eq!(*max, u64::from(UNTRUSTED_MAX_PAYLOAD), "{name}");
            }
            _ => panic!("{name}: unexpected outcome {outcome:?}"),
        }
    }
}
