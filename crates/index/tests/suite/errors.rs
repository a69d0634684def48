//! Input validation and replacement semantics.

use glimpse_index::{Error, Index, IndexConfig};

#[test]
fn bad_vectors_are_typed_errors() {
    let index = Index::new(IndexConfig::new(4)).unwrap();
    let e = index.insert(1, &[1.0, 2.0, 3.0]).unwrap_err();
    assert!(
        matches!(
            e,
            Error::DimensionMismatch {
                id: Some(1),
                expected: 4,
                got: 3
            }
        ),
        "{e}"
    );
    let e = index.insert(2, &[1.0, f32::NAN, 0.0, 0.0]).unwrap_err();
    assert!(
        matches!(
            e,
            Error::NonFinite {
                id: Some(2),
                position: 1
            }
        ),
        "{e}"
    );
    let e = index
        .insert(3, &[1.0, 0.0, f32::NEG_INFINITY, 0.0])
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::NonFinite {
                id: Some(3),
                position: 2
            }
        ),
        "{e}"
    );
    let e = index.insert(4, &[0.0; 4]).unwrap_err();
    assert!(matches!(e, Error::ZeroVector { id: Some(4) }), "{e}");
    // A batch with one bad vector inserts nothing.
    let batch = vec![(5u64, vec![1.0, 0.0, 0.0, 0.0]), (6, vec![0.0; 4])];
    assert!(matches!(
        index.insert_batch(&batch),
        Err(Error::ZeroVector { id: Some(6) })
    ));
    assert!(index.is_empty());
    // Queries too.
    let e = index.search(&[1.0; 5], 3, None).unwrap_err();
    assert!(
        matches!(e, Error::DimensionMismatch { id: None, .. }),
        "{e}"
    );
    assert!(matches!(
        index.search(&[0.0; 4], 3, None),
        Err(Error::ZeroVector { id: None })
    ));
    assert!(matches!(
        Index::new(IndexConfig {
            m: 1000,
            ..IndexConfig::new(4)
        }),
        Err(Error::InvalidConfig { field: "m", .. })
    ));
}

#[test]
fn reinsert_replaces_and_edge_cases() {
    let index = Index::new(IndexConfig::new(3)).unwrap();
    assert!(index.search(&[1.0, 0.0, 0.0], 5, None).unwrap().is_empty());
    index.insert(7, &[1.0, 0.0, 0.0]).unwrap();
    index.insert(8, &[0.0, 1.0, 0.0]).unwrap();
    index.insert(7, &[0.0, 0.0, 5.0]).unwrap();
    assert_eq!(index.len(), 2);
    assert_eq!(index.get(7).unwrap(), vec![0.0, 0.0, 1.0]);
    let hits = index.search(&[0.0, 0.0, 1.0], 5, None).unwrap();
    assert_eq!(hits.len(), 2, "k larger than the index returns everything");
    assert!(hits[0].0 == 7 && (hits[0].1 - 1.0).abs() < 1e-6);
    let hits = index.search(&[1.0, 0.0, 0.0], 5, None).unwrap();
    assert!(
        hits.iter().all(|h| h.1 < 0.5),
        "old vector of 7 still found: {hits:?}"
    );
    assert!(index.search(&[1.0, 0.0, 0.0], 0, None).unwrap().is_empty());
    // Opposite direction: score -1.
    let hits = index.search(&[0.0, -1.0, 0.0], 2, None).unwrap();
    let last = hits.last().unwrap();
    assert!(last.0 == 8 && (last.1 + 1.0).abs() < 1e-6);
    // Duplicate ids inside one batch: the last wins.
    index
        .insert_batch(&[(9u64, [1.0f32, 0.0, 0.0]), (9, [0.0, 1.0, 0.0])])
        .unwrap();
    assert_eq!(index.get(9).unwrap(), vec![0.0, 1.0, 0.0]);
    assert_eq!(index.len(), 3);
}
