//! `--stop`: cut the generated text right before the first stop string.
//!
//! Text arrives in pieces (one per completed token), and a stop string can
//! span pieces, so the filter holds back the longest tail of what it has seen
//! that could still grow into a stop string; everything before that tail is
//! safe to print at once.

/// The stop strings and the text held back while a match is still possible.
#[derive(Debug, Default)]
pub struct StopFilter {
    stops: Vec<String>,
    held: String,
}

/// What a piece of text released.
#[derive(Debug, PartialEq, Eq)]
pub struct Released {
    /// Text that can be printed now.
    pub text: String,
    /// A stop string was reached: `text` ends right before it.
    pub stopped: bool,
}

impl StopFilter {
    pub fn new(stops: &[String]) -> Self {
        StopFilter {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            held: String::new(),
        }
    }

    /// Adds a piece of generated text.
    pub fn push(&mut self, piece: &str) -> Released {
        self.held.push_str(piece);
        let first_stop = self
            .stops
            .iter()
            .filter_map(|stop| self.held.find(stop.as_str()))
            .min();
        if let Some(at) = first_stop {
            let text = self.held[..at].to_string();
            self.held.clear();
            return Released {
                text,
                stopped: true,
            };
        }
        let keep = self.partial_match_len();
        let text = self.held[..self.held.len() - keep].to_string();
        self.held.drain(..self.held.len() - keep);
        Released {
            text,
            stopped: false,
        }
    }

    /// The text still held back (at the end of the generation, it is output).
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    /// The length of the longest tail of `held` that is a proper prefix of a
    /// stop string (on a character boundary).
    fn partial_match_len(&self) -> usize {
        let held = self.held.as_str();
        held.char_indices()
            .map(|(i, _)| &held[i..])
            .find(|tail| self.stops.iter().any(|stop| stop.starts_with(tail)))
            .map_or(0, str::len)
    }
}
