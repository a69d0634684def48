//! What a picture shows ([`Spec`]: shape, colour, size, position, background), its captions
//! and the evaluation queries.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::zh::{short_position, Zh};

/// Side in pixels of the pictures [`generate`] writes.
pub const DEFAULT_SIZE: u32 = 96;

/// Name of the caption file in a dataset folder: one `file<TAB>caption` line per picture, the
/// file relative to the folder.
pub const CAPTIONS_FILE: &str = "captions.tsv";

/// Name of the Chinese caption file in a dataset folder, in the format of [`CAPTIONS_FILE`]:
/// the same pictures, the same captions translated.
pub const CAPTIONS_ZH_FILE: &str = "captions_zh.tsv";

macro_rules! attribute {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $canonical:literal $(| $syn:literal)*,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The canonical word(s) for the value, as used in evaluation queries.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $canonical,)+
                }
            }

            /// Every wording captions may use for the value, canonical first.
            pub fn synonyms(self) -> &'static [&'static str] {
                match self {
                    $($name::$variant => &[$canonical $(, $syn)*],)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

attribute! {
    /// The object's outline.
    Shape {
        /// A filled disc.
        Circle => "circle" | "disc",
        /// An axis-aligned square.
        Square => "square",
        /// An upward-pointing triangle.
        Triangle => "triangle",
        /// A five-pointed star.
        Star => "star",
        /// A plus-shaped cross.
        Cross => "cross" | "plus sign",
        /// A square standing on a corner.
        Diamond => "diamond" | "rhombus",
    }
}

attribute! {
    /// The object's colour.
    Colour {
        /// Red.
        Red => "red",
        /// Green.
        Green => "green",
        /// Blue.
        Blue => "blue",
        /// Yellow.
        Yellow => "yellow",
        /// Purple.
        Purple => "purple" | "violet",
        /// Orange.
        Orange => "orange",
        /// White.
        White => "white",
        /// Black.
        Black => "black",
    }
}

attribute! {
    /// The object's size relative to the picture.
    Size {
        /// About a third of the picture's side across.
        Small => "small" | "little" | "tiny",
        /// More than half of the picture's side across.
        Large => "large" | "big",
    }
}

attribute! {
    /// Where the object sits, on a 3 × 3 grid.
    Position {
        /// Upper left.
        TopLeft => "at the top left" | "in the top left corner" | "in the upper left",
        /// Upper middle.
        Top => "at the top" | "at the top center",
        /// Upper right.
        TopRight => "at the top right" | "in the top right corner" | "in the upper right",
        /// Middle left.
        Left => "on the left" | "at the left",
        /// The middle.
        Center => "in the center" | "in the middle",
        /// Middle right.
        Right => "on the right" | "at the right",
        /// Lower left.
        BottomLeft => "at the bottom left" | "in the bottom left corner" | "in the lower left",
        /// Lower middle.
        Bottom => "at the bottom" | "at the bottom center",
        /// Lower right.
        BottomRight => "at the bottom right" | "in the bottom right corner" | "in the lower right",
    }
}

attribute! {
    /// The background texture.
    Background {
        /// One colour with faint grain.
        Plain => "on a plain background" | "on a uniform background",
        /// Parallel stripes of two colours.
        Striped => "on a striped background" | "against stripes",
        /// Dots of one colour on another.
        Dotted => "on a dotted background" | "on a polka-dot background",
        /// Strong per-pixel noise.
        Noisy => "on a noisy background" | "on a grainy background",
        /// A smooth blend of two colours.
        Gradient => "on a gradient background" | "on a smooth gradient",
        /// A checkerboard of two colours.
        Checkered => "on a checkered background" | "on a checkerboard",
    }
}

impl Position {
    /// Short form for terse captions ("top left", "center").
    pub fn short(self) -> &'static str {
        match self {
            Position::TopLeft => "top left",
            Position::Top => "top",
            Position::TopRight => "top right",
            Position::Left => "left",
            Position::Center => "center",
            Position::Right => "right",
            Position::BottomLeft => "bottom left",
            Position::Bottom => "bottom",
            Position::BottomRight => "bottom right",
        }
    }

    /// Grid cell: column and row in `0..3`.
    pub(crate) fn cell(self) -> (u32, u32) {
        let i = Position::ALL
            .iter()
            .position(|&p| p == self)
            .expect("listed") as u32;
        (i % 3, i / 3)
    }

    /// The position seen in a mirror (left ↔ right).
    pub fn mirrored(self) -> Position {
        let (col, row) = self.cell();
        Position::ALL[(row * 3 + (2 - col)) as usize]
    }
}

impl Colour {
    /// The nominal sRGB value (pictures jitter it a little).
    pub fn rgb(self) -> [u8; 3] {
        match self {
            Colour::Red => [220, 30, 35],
            Colour::Green => [35, 170, 50],
            Colour::Blue => [30, 70, 220],
            Colour::Yellow => [240, 215, 30],
            Colour::Purple => [140, 40, 190],
            Colour::Orange => [250, 130, 20],
            Colour::White => [245, 245, 245],
            Colour::Black => [15, 15, 15],
        }
    }
}

/// Everything that determines one picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Spec {
    /// The object's outline.
    pub shape: Shape,
    /// The object's colour.
    pub colour: Colour,
    /// The object's size.
    pub size: Size,
    /// Where the object is.
    pub position: Position,
    /// The background texture.
    pub background: Background,
    /// Seed of the picture's details (texture colours and phase, jitter of position, size and
    /// colour).
    pub seed: u64,
}

impl Spec {
    /// A spec with every attribute drawn uniformly from `rng`.
    pub fn random(rng: &mut impl Rng) -> Spec {
        Spec {
            shape: *Shape::ALL.choose(rng).expect("non-empty"),
            colour: *Colour::ALL.choose(rng).expect("non-empty"),
            size: *Size::ALL.choose(rng).expect("non-empty"),
            position: *Position::ALL.choose(rng).expect("non-empty"),
            background: *Background::ALL.choose(rng).expect("non-empty"),
            seed: rng.gen(),
        }
    }

    /// The canonical full caption: "a small red circle at the top left on a striped
    /// background".
    pub fn full_caption(&self) -> String {
        let noun = format!("{} {} {}", self.size, self.colour, self.shape);
        format!(
            "{} {noun} {} {}",
            article(&noun),
            self.position,
            self.background
        )
    }

    /// The colour + shape query that this picture answers: "a red circle".
    pub fn query(&self) -> String {
        colour_shape_query(self.colour, self.shape)
    }

    /// The canonical full caption in Chinese: "条纹背景上，左上角有一个小的红色圆形".
    pub fn full_caption_zh(&self) -> String {
        format!(
            "{}上，{}有一个{}{}{}",
            self.background.zh(0),
            self.position.zh(0),
            self.size.zh(0),
            self.colour.zh(0),
            self.shape.zh(0)
        )
    }

    /// The colour + shape query in Chinese: "一个红色圆形".
    pub fn query_zh(&self) -> String {
        colour_shape_query_zh(self.colour, self.shape)
    }

    /// The same picture mirrored left ↔ right, as far as the caption is concerned (the shapes
    /// are all symmetric about the vertical axis).
    pub fn mirrored(&self) -> Spec {
        Spec {
            position: self.position.mirrored(),
            ..*self
        }
    }
}

fn article(next: &str) -> &'static str {
    match next.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

fn colour_shape_query(colour: Colour, shape: Shape) -> String {
    let noun = format!("{colour} {shape}");
    format!("{} {noun}", article(&noun))
}

/// A caption for `spec` in one of several wordings, with synonyms, drawn from `rng`. Some
/// wordings leave out the size, position or background; every one names the colour and shape.
/// The same as [`captions`]`(spec, rng).en` (and it draws the same numbers from `rng`).
pub fn caption(spec: &Spec, rng: &mut impl Rng) -> String {
    captions(spec, rng).en
}

/// One caption in English and in Chinese: the same wording and the same synonyms, translated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Captions {
    /// English ("a small red circle at the top left on a striped background").
    pub en: String,
    /// Chinese, built from the same draw ("条纹背景上，左上角有一个小的红色圆形").
    pub zh: String,
}

/// A caption for `spec` in English and Chinese: one wording and one synonym per attribute
/// drawn from `rng` (exactly the draws [`caption`] makes, so the English is the same), and
/// both languages written from them.
pub fn captions(spec: &Spec, rng: &mut impl Rng) -> Captions {
    /// The index of a synonym among `len`, drawn as `choose` on a slice of `len` draws it.
    fn pick(len: usize, rng: &mut impl Rng) -> usize {
        const INDICES: [usize; 8] = [0, 1, 2, 3, 4, 5, 6, 7];
        *INDICES[..len].choose(rng).expect("non-empty")
    }
    let c = pick(spec.colour.synonyms().len(), rng);
    let s = pick(spec.shape.synonyms().len(), rng);
    let z = pick(spec.size.synonyms().len(), rng);
    let p = pick(spec.position.synonyms().len(), rng);
    let b = pick(spec.background.synonyms().len(), rng);
    let (colour, shape, size) = (
        spec.colour.synonyms()[c],
        spec.shape.synonyms()[s],
        spec.size.synonyms()[z],
    );
    let (position, background) = (spec.position.synonyms()[p], spec.background.synonyms()[b]);
    let (zc, zs, zz) = (spec.colour.zh(c), spec.shape.zh(s), spec.size.zh(z));
    let (zp, zb) = (spec.position.zh(p), spec.background.zh(b));
    let with_article = |noun: String| format!("{} {noun}", article(&noun));
    let (en, zh) = match rng.gen_range(0..10) {
        0 | 1 => (
            format!(
                "{} {position} {background}",
                with_article(format!("{size} {colour} {shape}"))
            ),
            format!("{zb}上，{zp}有一个{zz}{zc}{zs}"),
        ),
        2 => (
            format!(
                "a photo of {} {position}",
                with_article(format!("{size} {colour} {shape}"))
            ),
            format!("{zp}有一个{zz}{zc}{zs}的照片"),
        ),
        3 => (
            format!("{colour} {shape}, {}", spec.position.short()),
            format!("{zc}{zs}，{}", short_position(spec.position)),
        ),
        4 => (
            format!("{} {background}", with_article(format!("{colour} {shape}"))),
            format!("{zb}上的一个{zc}{zs}"),
        ),
        5 => (
            format!("a picture of {}", with_article(format!("{colour} {shape}"))),
            format!("一张{zc}{zs}的图片"),
        ),
        6 => (format!("{size} {colour} {shape}"), format!("{zz}{zc}{zs}")),
        7 => (
            with_article(format!("{colour} {shape}")),
            format!("一个{zc}{zs}"),
        ),
        8 => (
            format!(
                "there is {} {position}",
                with_article(format!("{size} {colour} {shape}"))
            ),
            format!("{zp}有一个{zz}{zc}{zs}"),
        ),
        _ => (
            format!(
                "{} {background}, {position}",
                with_article(format!("{colour} {shape}"))
            ),
            format!("{zb}上的一个{zc}{zs}，在{zp}"),
        ),
    };
    Captions { en, zh }
}

/// Whether a caption names a side, so that mirroring the picture would contradict it.
pub fn mentions_side(caption: &str) -> bool {
    caption
        .split(|c: char| !c.is_alphanumeric())
        .any(|w| matches!(w, "left" | "right"))
}

/// The evaluation queries, one per colour × shape ("a red circle", ...), colour-major.
pub fn queries() -> Vec<(String, Colour, Shape)> {
    let mut out = Vec::with_capacity(Colour::ALL.len() * Shape::ALL.len());
    for &colour in Colour::ALL {
        for &shape in Shape::ALL {
            out.push((colour_shape_query(colour, shape), colour, shape));
        }
    }
    out
}

/// The evaluation queries in Chinese, in the order of [`queries`]: "一个红色圆形", ...
pub fn queries_zh() -> Vec<(String, Colour, Shape)> {
    queries()
        .into_iter()
        .map(|(_, colour, shape)| (colour_shape_query_zh(colour, shape), colour, shape))
        .collect()
}

fn colour_shape_query_zh(colour: Colour, shape: Shape) -> String {
    format!("一个{}{}", colour.zh(0), shape.zh(0))
}

/// `n` specs drawn from the seeded generator (for a training set).
pub fn random_specs(n: usize, seed: u64) -> Vec<Spec> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| Spec::random(&mut rng)).collect()
}

/// `n` specs that cycle through every colour × shape in [`queries`] order (colour-major), the
/// other attributes drawn from the seeded generator: a balanced evaluation set in which every
/// colour + shape query has `n / 48` (rounded up or down) relevant pictures.
pub fn balanced_specs(n: usize, seed: u64) -> Vec<Spec> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5EED_BA1A_4CED);
    let combos = queries();
    (0..n)
        .map(|i| {
            let (_, colour, shape) = combos[i % combos.len()];
            Spec {
                colour,
                shape,
                ..Spec::random(&mut rng)
            }
        })
        .collect()
}
