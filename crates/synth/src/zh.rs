//! The Chinese wording of every attribute, parallel to the English synonyms: a caption's
//! Chinese version uses the Chinese word at the index of the English synonym drawn (wrapping
//! when a value has fewer Chinese words than English ones), so both say the same thing.

use crate::spec::{Background, Colour, Position, Shape, Size};

/// Chinese words for an attribute value, parallel to its English `synonyms()`.
pub(crate) trait Zh: Copy {
    /// Every Chinese wording, canonical first.
    fn zh_words(self) -> &'static [&'static str];

    /// The Chinese word matching the English synonym at `index`.
    fn zh(self, index: usize) -> &'static str {
        let words = self.zh_words();
        words[index % words.len()]
    }
}

impl Zh for Shape {
    fn zh_words(self) -> &'static [&'static str] {
        match self {
            Shape::Circle => &["圆形", "圆盘"],
            Shape::Square => &["正方形"],
            Shape::Triangle => &["三角形"],
            Shape::Star => &["五角星"],
            Shape::Cross => &["十字形", "加号"],
            Shape::Diamond => &["菱形", "斜方形"],
        }
    }
}

impl Zh for Colour {
    fn zh_words(self) -> &'static [&'static str] {
        match self {
            Colour::Red => &["红色"],
            Colour::Green => &["绿色"],
            Colour::Blue => &["蓝色"],
            Colour::Yellow => &["黄色"],
            Colour::Purple => &["紫色", "紫罗兰色"],
            Colour::Orange => &["橙色"],
            Colour::White => &["白色"],
            Colour::Black => &["黑色"],
        }
    }
}

impl Zh for Size {
    /// With the particle 的: "一个小的红色圆形".
    fn zh_words(self) -> &'static [&'static str] {
        match self {
            Size::Small => &["小的", "小小的", "很小的"],
            Size::Large => &["大的", "很大的"],
        }
    }
}

impl Zh for Position {
    /// Place nouns: "左上角有一个…", "在左上角".
    fn zh_words(self) -> &'static [&'static str] {
        match self {
            Position::TopLeft => &["左上角", "左上角", "左上方"],
            Position::Top => &["顶部", "上方正中"],
            Position::TopRight => &["右上角", "右上角", "右上方"],
            Position::Left => &["左边", "左侧"],
            Position::Center => &["中间", "正中央"],
            Position::Right => &["右边", "右侧"],
            Position::BottomLeft => &["左下角", "左下角", "左下方"],
            Position::Bottom => &["底部", "下方正中"],
            Position::BottomRight => &["右下角", "右下角", "右下方"],
        }
    }
}

impl Zh for Background {
    /// Place nouns: "条纹背景上的…".
    fn zh_words(self) -> &'static [&'static str] {
        match self {
            Background::Plain => &["纯色背景", "单色背景"],
            Background::Striped => &["条纹背景", "条纹"],
            Background::Dotted => &["圆点背景", "波点背景"],
            Background::Noisy => &["噪点背景", "颗粒感背景"],
            Background::Gradient => &["渐变背景", "柔和的渐变"],
            Background::Checkered => &["格子背景", "棋盘格"],
        }
    }
}

/// The terse form of a position ("红色圆形，左上角"), as [`Position::short`] in English.
pub(crate) fn short_position(position: Position) -> &'static str {
    match position {
        Position::TopLeft => "左上角",
        Position::Top => "上方",
        Position::TopRight => "右上角",
        Position::Left => "左侧",
        Position::Center => "中间",
        Position::Right => "右侧",
        Position::BottomLeft => "左下角",
        Position::Bottom => "下方",
        Position::BottomRight => "右下角",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value has at least one Chinese word, and no Chinese list is longer than the
    /// English one (extra words could never be drawn).
    #[test]
    fn tables_are_complete() {
        fn check<T: Zh + std::fmt::Debug>(values: &[T], english: impl Fn(T) -> usize) {
            for &v in values {
                let zh = v.zh_words();
                assert!(!zh.is_empty(), "{v:?}");
                assert!(zh.len() <= english(v), "{v:?}: {zh:?}");
                assert!(zh.iter().all(|w| !w.is_ascii()), "{v:?}: {zh:?}");
            }
        }
        check(Shape::ALL, |v| v.synonyms().len());
        check(Colour::ALL, |v| v.synonyms().len());
        check(Size::ALL, |v| v.synonyms().len());
        check(Position::ALL, |v| v.synonyms().len());
        check(Background::ALL, |v| v.synonyms().len());
    }
}
