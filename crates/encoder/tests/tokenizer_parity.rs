//! Token ids equal `transformers`' `CLIPTokenizer` (truncation to 77) for every reference text.

mod common;

use glimpse_encoder::tokenize::ClipTokenizer;

#[test]
fn ids_equal_reference_for_every_text() {
    let reference = common::Reference::load();
    let texts = reference.texts();
    assert!(texts.len() >= 20);
    for checkpoint in ["tiny-clip", "tiny-clip-gelu"] {
        let tok = ClipTokenizer::from_dir(common::fixtures().join(checkpoint)).unwrap();
        for (text, expected) in &texts {
            let ids = tok.encode(text).unwrap();
            assert_eq!(&ids, expected, "{checkpoint}: ids differ for {text:?}");
        }
        let batch: Vec<&str> = texts.iter().map(|(t, _)| t.as_str()).collect();
        let ids = tok.encode_batch(&batch).unwrap();
        let expected: Vec<Vec<u32>> = texts.iter().map(|(_, ids)| ids.clone()).collect();
        assert_eq!(ids, expected, "{checkpoint}: batch ids differ");
    }
}

#[test]
fn over_long_texts_are_cut_to_77_ending_with_eos() {
    let reference = common::Reference::load();
    let tok = ClipTokenizer::from_dir(common::fixtures().join("tiny-clip")).unwrap();
    let truncated: Vec<_> = reference.json["texts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["truncated"].as_bool().unwrap())
        .map(|t| t["text"].as_str().unwrap().to_string())
        .collect();
    assert!(!truncated.is_empty());
    for text in truncated {
        let ids = tok.encode(&text).unwrap();
        assert_eq!(ids.len(), 77);
        assert_eq!(ids[0], 49406);
        assert_eq!(ids[76], 49407);
    }
}
