//! The .npy writer, checked against the format spec byte by byte, and by
//! numpy itself when python3 with numpy is at hand.

use std::process::Command;

use ditto_rt::npy;

/// A reader written from the spec: magic, version 1.0, u16 LE header
/// length, dict, data at a multiple of 64.
fn parse(bytes: &[u8]) -> (String, Vec<f32>) {
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    assert_eq!(&bytes[6..8], &[1, 0]);
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let data_start = 10 + header_len;
    assert_eq!(data_start % 64, 0, "data must start 64-byte aligned");
    let header = std::str::from_utf8(&bytes[10..data_start]).unwrap();
    assert!(header.ends_with('\n'));
    let data = bytes[data_start..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (header.trim_end().to_string(), data)
}

#[test]
fn header_follows_the_spec() {
    let (header, data) = parse(&npy::header(&[3, 151936]));
    assert_eq!(
        header,
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 151936), }"
    );
    assert!(data.is_empty());
    let (header, _) = parse(&npy::header(&[7]));
    assert!(header.contains("'shape': (7,)"), "{header}");
}

#[test]
fn written_file_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logits.npy");
    let data: Vec<f32> = (0..2 * 5).map(|i| i as f32 * 0.5 - 1.25).collect();
    npy::write_f32(&path, &[2, 5], &data).unwrap();
    let (header, read) = parse(&std::fs::read(&path).unwrap());
    assert!(header.contains("'shape': (2, 5)"));
    assert_eq!(read, data);

    // numpy's own reader, where available.
    let script = "import sys, numpy as np\na = np.load(sys.argv[1])\nprint(a.dtype, a.shape, ' '.join(str(float(v)) for v in a.ravel()))";
    if let Ok(out) = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output()
    {
        if out.status.success() {
            let expected = format!(
                "float32 (2, 5) {}\n",
                data.iter()
                    .map(|v| format!("{:?}", *v as f64))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
        } else {
            eprintln!(
                "numpy check skipped: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn unwritable_path_is_an_error() {
    let err =
        npy::write_f32(std::path::Path::new("/nonexistent/dir/x.npy"), &[1], &[0.0]).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/dir/x.npy"), "{err}");
}
