//! The payload's tokenizer: prompt encoding (BOS per `tokenizer_config`) and
//! streaming detokenization that never prints half a UTF-8 character.

use serde::Deserialize;

use crate::Error;

/// `model.tokenizer_config.json` (contracts.md §1).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TokenizerConfig {
    pub bos_token_id: Option<u32>,
    #[serde(default)]
    pub eos_token_ids: Vec<u32>,
    #[serde(default)]
    pub add_bos_token: bool,
    #[serde(default)]
    pub chat_template: Option<String>,
    #[serde(default)]
    pub fim: Option<FimTokens>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct FimTokens {
    pub prefix: u32,
    pub middle: u32,
    pub suffix: u32,
}

impl TokenizerConfig {
    pub fn from_json(json: &[u8]) -> Result<TokenizerConfig, Error> {
        serde_json::from_slice(json)
            .map_err(|e| Error::BadTokenizer(format!("tokenizer_config section: {e}")))
    }

    /// The BOS id to put in front of a text prompt, if any.
    pub fn bos(&self) -> Option<u32> {
        self.bos_token_id.filter(|_| self.add_bos_token)
    }
}

pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
}

impl Tokenizer {
    /// Parses a Hugging Face `tokenizer.json`.
    pub fn from_json(json: &[u8]) -> Result<Tokenizer, Error> {
        let inner = ditto_tokenizer_json::load(json)
            .map_err(|e| Error::BadTokenizer(format!("tokenizer section: {e}")))?;
        Ok(Tokenizer { inner })
    }

    /// Token ids of `text`, without any special tokens the tokenizer's
    /// post-processor would add (BOS is the caller's decision).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, Error> {
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|e| Error::BadTokenizer(format!("cannot encode the prompt: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The text of `ids` (special tokens included, invalid UTF-8 as U+FFFD).
    pub fn decode(&self, ids: &[u32]) -> String {
        // Decoding fails only for ids the vocabulary lacks; show those as U+FFFD.
        self.inner
            .decode(ids, false)
            .unwrap_or_else(|_| char::REPLACEMENT_CHARACTER.to_string())
    }

    /// A detokenizer for generated ids, one at a time.
    pub fn stream(&self) -> TextStream<'_> {
        TextStream {
            tokenizer: self,
            ids: Vec::new(),
            prefix_offset: 0,
            read_offset: 0,
        }
    }
}

/// Turns generated ids into text pieces as soon as they are complete.
///
/// Decoding one token on its own goes wrong twice: a byte-level token may
/// hold half a UTF-8 character (it decodes to U+FFFD), and some decoders
/// treat the first token of a text differently (SentencePiece drops the
/// leading space). So each step decodes `ids[prefix_offset..]`, the tokens
/// since the last printed piece plus one token of context, and prints only
/// what goes beyond `ids[prefix_offset..read_offset]`, and only once it
/// does not end in U+FFFD.
pub struct TextStream<'t> {
    tokenizer: &'t Tokenizer,
    ids: Vec<u32>,
    /// Start of the context window.
    prefix_offset: usize,
    /// Tokens before this are printed.
    read_offset: usize,
}

impl TextStream<'_> {
    /// Adds one id; returns the text that became complete, if any.
    pub fn push(&mut self, id: u32) -> Option<String> {
        self.ids.push(id);
        let printed = self
            .tokenizer
            .decode(&self.ids[self.prefix_offset..self.read_offset]);
        let text = self.tokenizer.decode(&self.ids[self.prefix_offset..]);
        if text.len() <= printed.len() || text.ends_with(char::REPLACEMENT_CHARACTER) {
            return None;
        }
        let piece = text.get(printed.len()..)?.to_string();
        self.prefix_offset = self.read_offset;
        self.read_offset = self.ids.len();
        Some(piece)
    }

    /// The text still held back (an incomplete character at the very end
    /// comes out as U+FFFD).
    pub fn finish(&mut self) -> String {
        let printed = self
            .tokenizer
            .decode(&self.ids[self.prefix_offset..self.read_offset]);
        let text = self.tokenizer.decode(&self.ids[self.prefix_offset..]);
        self.prefix_offset = self.ids.len();
        self.read_offset = self.ids.len();
        text.get(printed.len()..).unwrap_or_default().to_string()
    }
}
