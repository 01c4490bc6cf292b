//! Training and evaluation rows: a feature matrix and the churn label of each row.

use ndarray::{Array2, Axis};

use super::ModelError;

/// Rows × features, with one label per row (`true` = churned within the horizon).
///
/// Built through [`Dataset::new`], which checks the shapes and that every value is finite, so
/// training never meets a NaN half-way through a solve.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub features: Array2<f64>,
    pub labels: Vec<bool>,
}

impl Dataset {
    pub fn new(features: Array2<f64>, labels: Vec<bool>) -> Result<Self, ModelError> {
        let dataset = Self { features, labels };
        dataset.check_shape()?;
        if let Some(((row, column), value)) = dataset
            .features
            .indexed_iter()
            .find(|(_, value)| !value.is_finite())
        {
            return Err(ModelError::NonFiniteFeature {
                row,
                column,
                value: *value,
            });
        }
        Ok(dataset)
    }

    /// The cheap part of [`Dataset::new`]'s checks; the fields are public, so training repeats it.
    pub(crate) fn check_shape(&self) -> Result<(), ModelError> {
        let (rows, columns) = self.features.dim();
        if rows != self.labels.len() {
            return Err(ModelError::ShapeMismatch {
                rows,
                labels: self.labels.len(),
            });
        }
        if rows == 0 || columns == 0 {
            return Err(ModelError::EmptyDataset);
        }
        Ok(())
    }

    pub fn rows(&self) -> usize {
        self.labels.len()
    }

    pub fn feature_count(&self) -> usize {
        self.features.ncols()
    }

    pub fn positives(&self) -> usize {
        self.labels.iter().filter(|label| **label).count()
    }

    /// The first `rows` rows and the rest: with rows in time order, a training set and the
    /// later hold-out that a time split needs. `rows` past the end is clamped.
    pub fn split_at(&self, rows: usize) -> (Dataset, Dataset) {
        let rows = rows.min(self.rows());
        let (head, tail) = self.features.view().split_at(Axis(0), rows);
        (
            Dataset {
                features: head.to_owned(),
                labels: self.labels[..rows].to_vec(),
            },
            Dataset {
                features: tail.to_owned(),
                labels: self.labels[rows..].to_vec(),
            },
        )
    }

    /// The rows at `indices`, in that order (the parts of a cross-validation).
    pub fn select(&self, indices: &[usize]) -> Result<Dataset, ModelError> {
        let dataset = Dataset {
            features: self.features.select(Axis(0), indices),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
        };
        dataset.check_shape()?;
        Ok(dataset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn a_label_count_that_differs_from_the_row_count_is_refused() {
        let result = Dataset::new(array![[1.0], [2.0]], vec![true]);
        assert!(matches!(
            result,
            Err(ModelError::ShapeMismatch { rows: 2, labels: 1 })
        ));
    }

    #[test]
    fn a_non_finite_feature_is_refused_with_its_position() {
        let result = Dataset::new(array![[1.0, 2.0], [3.0, f64::NAN]], vec![true, false]);
        assert!(matches!(
            result,
            Err(ModelError::NonFiniteFeature {
                row: 1,
                column: 1,
                ..
            })
        ));
    }

    #[test]
    fn an_empty_dataset_is_refused() {
        let result = Dataset::new(Array2::zeros((0, 3)), vec![]);
        assert!(matches!(result, Err(ModelError::EmptyDataset)));
    }

    #[test]
    fn split_at_keeps_row_order_and_clamps() {
        let data = Dataset::new(array![[1.0], [2.0], [3.0]], vec![true, false, true])
            .expect("valid dataset");
        let (head, tail) = data.split_at(2);
        assert_eq!(head.features, array![[1.0], [2.0]]);
        assert_eq!(tail.labels, vec![true]);
        let (all, none) = data.split_at(10);
        assert_eq!(all.rows(), 3);
        assert_eq!(none.rows(), 0);
    }

    #[test]
    fn select_takes_the_rows_asked_for_in_order() {
        let data = Dataset::new(array![[1.0], [2.0], [3.0]], vec![true, false, true])
            .expect("valid dataset");
        let picked = data.select(&[2, 0]).expect("rows");
        assert_eq!(picked.features, array![[3.0], [1.0]]);
        assert_eq!(picked.labels, vec![true, true]);
        assert!(matches!(data.select(&[]), Err(ModelError::EmptyDataset)));
    }
}
