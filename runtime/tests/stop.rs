//! The `--stop` filter: text streamed in pieces comes out exactly as the
//! whole text cut before the first stop string, wherever the pieces split.

use ditto_rt::stop::{Released, StopFilter};

/// Streams `pieces` through a filter; returns the output and whether it stopped.
fn stream(stops: &[&str], pieces: &[&str]) -> (String, bool) {
    let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
    let mut filter = StopFilter::new(&stops);
    let mut out = String::new();
    for piece in pieces {
        let Released { text, stopped } = filter.push(piece);
        out.push_str(&text);
        if stopped {
            return (out, true);
        }
    }
    out.push_str(&filter.finish());
    (out, false)
}

/// The expected output: `text` cut before the earliest stop string.
fn cut(stops: &[&str], text: &str) -> (String, bool) {
    match stops.iter().filter_map(|s| text.find(s)).min() {
        Some(at) => (text[..at].to_string(), true),
        None => (text.to_string(), false),
    }
}

#[test]
fn a_stop_inside_one_piece_cuts_there() {
    assert_eq!(
        stream(&["\ndef "], &["    return x\n", "\ndef g():"]),
        ("    return x\n".to_string(), true)
    );
}

#[test]
fn a_stop_across_pieces_is_found_and_nothing_of_it_is_printed() {
    let stops = ["\nclass "];
    let mut filter = StopFilter::new(&["\nclass ".to_string()]);
    // "\ncl" could start the stop string: it is held back, not printed.
    assert_eq!(
        filter.push("x = 1\ncl"),
        Released {
            text: "x = 1".into(),
            stopped: false
        }
    );
    assert_eq!(
        filter.push("ass A:"),
        Released {
            text: "".into(),
            stopped: true
        }
    );
    assert_eq!(
        stream(&stops, &["x = 1\ncl", "ass A:"]),
        cut(&stops, "x = 1\nclass A:")
    );
}

#[test]
fn a_false_start_is_released_once_it_cannot_match() {
    assert_eq!(
        stream(&["\ndef "], &["a\nde", "bug = 1\n"]),
        ("a\ndebug = 1\n".to_string(), false)
    );
}

#[test]
fn every_split_of_every_text_matches_the_whole_text_cut() {
    let stops = ["\ndef ", "\n#", "ab"];
    let texts = [
        "x\n#y",
        "return 1\n\ndef f():",
        "aab",
        "no stop here\n",
        "é\ndé\ndef é",
        "\n",
        "",
    ];
    for text in texts {
        let bounds: Vec<usize> = (0..=text.len())
            .filter(|&i| text.is_char_boundary(i))
            .collect();
        // Every way to cut the text into two or three pieces.
        for &i in &bounds {
            for &j in bounds.iter().filter(|&&j| j >= i) {
                let pieces = [&text[..i], &text[i..j], &text[j..]];
                assert_eq!(stream(&stops, &pieces), cut(&stops, text), "{pieces:?}");
            }
        }
    }
}

#[test]
fn no_stop_strings_pass_everything_through() {
    assert_eq!(stream(&[], &["a", "b\n"]), ("ab\n".to_string(), false));
}
