//! Bit packing against the format doc: hand-computed bytes per width, a
//! bit-by-bit reference on random data, and round trips.

mod common;

use ditto_quantize::pack::{pack, pack_into, packed_len, unpack};
use ditto_quantize::{QuantizeError, SUPPORTED_BITS};
use proptest::prelude::*;

/// Bytes computed by hand from "bit t of the stream is bit t mod 8 of byte
/// t / 8" (e.g. b = 3: 1 | 2<<3 | 3<<6 | 4<<9 | 5<<12 | 6<<15 | 7<<18 =
/// 0x1F58D1, three bytes little-endian).
#[test]
fn hand_computed_bytes_per_width() {
    let cases: [(u8, &[u8], &[u8]); 9] = [
        (2, &[0, 1, 2, 3, 3, 2, 1, 0], &[0xE4, 0x1B]),
        (3, &[1, 2, 3, 4, 5, 6, 7, 0], &[0xD1, 0x58, 0x1F]),
        (4, &[1, 2, 3, 4, 15, 0, 9, 10], &[0x21, 0x43, 0x0F, 0xA9]),
        (
            5,
            &[31, 0, 1, 2, 3, 4, 5, 6],
            &[0x1F, 0x04, 0x31, 0x48, 0x31],
        ),
        (
            6,
            &[1, 2, 3, 4, 63, 0, 33, 17],
            &[0x81, 0x30, 0x10, 0x3F, 0x10, 0x46],
        ),
        (
            8,
            &[7, 200, 0, 255, 1, 2, 3, 4],
            &[7, 200, 0, 255, 1, 2, 3, 4],
        ),
        // Odd lengths: the last byte is partial, its high bits zero.
        (3, &[7, 7, 7], &[0xFF, 0x01]),
        (5, &[1, 2, 3], &[0x41, 0x0C]),
        (6, &[5], &[0x05]),
    ];
    for (bits, indices, bytes) in cases {
        assert_eq!(pack(indices, bits).unwrap(), bytes, "bits {bits}");
        assert_eq!(
            unpack(bytes, bits, indices.len()).unwrap(),
            indices,
            "bits {bits}"
        );
    }
}

#[test]
fn invalid_parameters_are_rejected() {
    assert_eq!(
        pack(&[0, 1], 7),
        Err(QuantizeError::UnsupportedBits { bits: 7 })
    );
    assert_eq!(
        pack(&[0, 4, 1], 2),
        Err(QuantizeError::IndexOutOfRange {
            position: 1,
            value: 4,
            bits: 2
        })
    );
    let mut out = [0u8; 2];
    assert!(matches!(
        pack_into(&[1, 2, 3], 4, &mut out[..1]),
        Err(QuantizeError::LengthMismatch {
            expected: 2,
            found: 1,
            ..
        })
    ));
    assert!(matches!(
        unpack(&[0, 0, 0], 4, 4),
        Err(QuantizeError::LengthMismatch {
            expected: 2,
            found: 3,
            ..
        })
    ));
    assert_eq!(
        unpack(&[0], 1, 8),
        Err(QuantizeError::UnsupportedBits { bits: 1 })
    );
    let msg = pack(&[0, 4, 1], 2).unwrap_err().to_string();
    assert!(
        msg.contains("position 1") && msg.contains("2 bits"),
        "{msg}"
    );
}

fn indices_and_bits() -> impl Strategy<Value = (u8, Vec<u8>)> {
    proptest::sample::select(SUPPORTED_BITS.to_vec()).prop_flat_map(|bits| {
        let max = ((1u32 << bits) - 1) as u8;
        (Just(bits), proptest::collection::vec(0..=max, 0..300))
    })
}

proptest! {
    #[test]
    fn pack_then_unpack_is_the_identity((bits, indices) in indices_and_bits()) {
        let packed = pack(&indices, bits).unwrap();
        prop_assert_eq!(packed.len(), (indices.len() * bits as usize).div_ceil(8));
        prop_assert_eq!(packed.len(), packed_len(indices.len(), bits));
        prop_assert_eq!(unpack(&packed, bits, indices.len()).unwrap(), indices);
    }

    #[test]
    fn packing_matches_the_bitwise_definition((bits, indices) in indices_and_bits()) {
        let packed = pack(&indices, bits).unwrap();
        for (i, &q) in indices.iter().enumerate() {
            prop_assert_eq!(common::read_index(&packed, bits, i), q);
        }
        // Bits past the last index are zero.
        let used = indices.len() * bits as usize;
        for bit in used..packed.len() * 8 {
            prop_assert_eq!((packed[bit / 8] >> (bit % 8)) & 1, 0);
        }
    }
}
