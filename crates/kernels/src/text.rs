//! The text tower on the native kernels: token and position embeddings, the stack, the pooled
//! position, final LN, projection. Two poolings ([`TextPooling`]): CLIP's (causal attention,
//! end-of-text token, run only as long as the longest sequence) and SigLIP's (bidirectional
//! attention over the full padded context, last position).

use std::sync::Arc;

use crate::dense::{buffer, project, Dense, Norm, Pool};
use crate::error::{Error, Result};
use crate::layer::Stack;
use crate::{ops, Isa};

/// The text tower's token embeddings `[vocab, hidden]`: owned, or shared with whatever holds
/// them (a memory-mapped checkpoint), so that a query process does not copy 100 MB it reads
/// ~10 rows of.
pub enum TokenTable {
    /// A copy.
    Owned(Vec<f32>),
    /// Rows kept elsewhere (e.g. in a mapped file) for as long as the tower lives.
    Shared(Arc<dyn AsRef<[f32]> + Send + Sync>),
}

impl std::fmt::Debug for TokenTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, len) = match self {
            TokenTable::Owned(v) => ("Owned", v.len()),
            TokenTable::Shared(s) => ("Shared", (**s).as_ref().len()),
        };
        write!(f, "TokenTable::{kind}({len} values)")
    }
}

impl TokenTable {
    fn rows(&self) -> &[f32] {
        match self {
            TokenTable::Owned(v) => v,
            TokenTable::Shared(s) => (**s).as_ref(),
        }
    }
}

/// The position whose hidden state is pooled, as `transformers`' `CLIPTextTransformer`
/// chooses it:
/// - `eos_token_id == 2` (the legacy value in OpenAI's configs): the position of the largest
///   id, first occurrence (`input_ids.argmax(-1)`; the end-of-text token has CLIP's largest
///   id);
/// - otherwise the first position holding `eos_token_id`, or 0 if there is none
///   (`(input_ids == eos_token_id).int().argmax(-1)`).
pub fn pooled_position(ids: &[u32], eos_token_id: u32) -> usize {
    if eos_token_id == 2 {
        // First index of the maximum (torch.argmax returns the first maximal index).
        let mut best = 0;
        for (i, &id) in ids.iter().enumerate() {
            if id > ids[best] {
                best = i;
            }
        }
        best
    } else {
        ids.iter().position(|&id| id == eos_token_id).unwrap_or(0)
    }
}

/// Which position of a sequence the text tower pools, and how it attends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextPooling {
    /// CLIP (`CLIPTextTransformer`): causal attention, pooled at the end-of-text token
    /// ([`pooled_position`]). Padding after it cannot change the result, so a batch runs only
    /// as long as its longest sequence.
    EndOfText {
        /// The end-of-text token id (`2` selects the legacy argmax rule).
        eos_token_id: u32,
    },
    /// SigLIP (`SiglipTextTransformer`): bidirectional attention, no mask, pooled at the last
    /// position of the full context. Every sequence is padded to the context length with
    /// `pad_id` first, exactly as `SiglipProcessor` (`padding="max_length"`) does: the padding
    /// is attended to, so the pad id changes the embedding.
    Last {
        /// The tokenizer's padding id.
        pad_id: u32,
    },
}

/// The text tower on the native kernels.
#[derive(Debug)]
pub struct NativeText {
    isa: Isa,
    hidden: usize,
    vocab: usize,
    context: usize,
    pooling: TextPooling,
    tokens: TokenTable,
    positions: Vec<f32>,
    stack: Stack,
    final_ln: Norm,
    projection: Dense,
    pool: Pool,
}

/// The weights of a [`NativeText`], already packed.
#[derive(Debug)]
pub struct TextWeights {
    /// Vocabulary size (rows of the token table).
    pub vocab: usize,
    /// Context length (rows of the position table).
    pub context: usize,
    /// Which position is pooled, and whether attention is causal.
    pub pooling: TextPooling,
    /// Token embeddings `[vocab, hidden]`.
    pub tokens: TokenTable,
    /// Position embeddings `[context, hidden]`.
    pub positions: Vec<f32>,
    /// The transformer stack.
    pub stack: Stack,
    /// Layer norm after the stack.
    pub final_ln: Norm,
    /// Projection into the embedding space (CLIP's `text_projection`, no bias; SigLIP's
    /// `text_model.head`, with bias).
    pub projection: Dense,
}

impl NativeText {
    /// The tower from its packed weights, run with the kernels of `isa`.
    ///
    /// # Panics
    /// If the table sizes disagree with the stack's width, or a [`TextPooling::Last`] pad id
    /// is outside the vocabulary.
    pub fn new(weights: TextWeights, isa: Isa) -> Self {
        let w = weights;
        let hidden = w.stack.hidden();
        if let TextPooling::Last { pad_id } = w.pooling {
            assert!((pad_id as usize) < w.vocab, "pad id outside the vocabulary");
        }
        assert_eq!(w.tokens.rows().len(), w.vocab * hidden, "token table");
        assert_eq!(w.positions.len(), w.context * hidden, "positions");
        assert_eq!(w.projection.inputs(), hidden, "projection inputs");
        Self {
            isa,
            hidden,
            vocab: w.vocab,
            context: w.context,
            pooling: w.pooling,
            tokens: w.tokens,
            positions: w.positions,
            stack: w.stack,
            final_ln: w.final_ln,
            projection: w.projection,
            pool: Pool::default(),
        }
    }

    /// The embedding width.
    pub fn dim(&self) -> usize {
        self.projection.outputs()
    }

    /// The context length (longest sequence).
    pub fn context_length(&self) -> usize {
        self.context
    }

    /// The vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.vocab
    }

    /// Checks that `ids` (sequence number `index` of a batch, for the message) can be encoded:
    /// `1..=context` ids, all inside the vocabulary.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] saying what is wrong.
    pub fn check_ids(&self, ids: &[u32], index: usize) -> Result<()> {
        if ids.is_empty() || ids.len() > self.context {
            return Err(Error::InvalidInput(format!(
                "token sequence {index} has {} ids; the model takes 1..={}",
                ids.len(),
                self.context
            )));
        }
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= self.vocab) {
            return Err(Error::InvalidInput(format!(
                "token sequence {index} has id {id}, outside the vocabulary of {}",
                self.vocab
            )));
        }
        Ok(())
    }

    /// How the tower pools.
    pub fn pooling(&self) -> TextPooling {
        self.pooling
    }

    /// L2-normalised embeddings of token id sequences; returns `[batch, projection]` row-major.
    /// With [`TextPooling::EndOfText`] the batch runs only as long as its longest sequence;
    /// with [`TextPooling::Last`] every sequence is padded to the context with the pad id.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an empty batch, an empty or over-long sequence, or an id
    /// outside the vocabulary.
    pub fn encode<S: AsRef<[u32]>>(&self, ids: &[S]) -> Result<Vec<f32>> {
        if ids.is_empty() {
            return Err(Error::InvalidInput("no token sequences".into()));
        }
        for (i, row) in ids.iter().enumerate() {
            self.check_ids(row.as_ref(), i)?;
        }
        let d = self.hidden;
        let batch = ids.len();
        let (seq, pad, causal) = match self.pooling {
            TextPooling::EndOfText { .. } => {
                // Padding after the end (id 0) is never attended to by the pooled position.
                let longest = ids.iter().map(|r| r.as_ref().len()).max().unwrap_or(0);
                (longest, 0, true)
            }
            TextPooling::Last { pad_id } => (self.context, pad_id, false),
        };
        let mut w = self.pool.take();
        let x = buffer(&mut w.x, batch * seq * d);
        for (b, row) in ids.iter().enumerate() {
            let row = row.as_ref();
            for i in 0..seq {
                let id = row.get(i).copied().unwrap_or(pad) as usize;
                let dst = &mut x[(b * seq + i) * d..(b * seq + i + 1) * d];
                dst.copy_from_slice(&self.tokens.rows()[id * d..(id + 1) * d]);
                ops::add_in_place(dst, &self.positions[i * d..(i + 1) * d]);
            }
        }
        self.stack.forward(self.isa, &mut w, batch, seq, causal);
        let mut pooled = Vec::with_capacity(batch * d);
        for (b, row) in ids.iter().enumerate() {
            let p = match self.pooling {
                TextPooling::EndOfText { eos_token_id } => {
                    pooled_position(row.as_ref(), eos_token_id)
                }
                TextPooling::Last { .. } => seq - 1,
            };
            pooled.extend_from_slice(&w.x[(b * seq + p) * d..(b * seq + p + 1) * d]);
        }
        let mut normed = vec![0.0; batch * d];
        self.final_ln.run(&pooled, &mut normed);
        let out = project(self.isa, &self.projection, &normed, batch, &mut w.scratch);
        self.pool.put(w);
        Ok(out)
    }
}
