//! One isolation tree: growth on a subsample and path lengths of new rows.
//!
//! # Layout
//! A tree is a flat `Vec` of 16-byte nodes in pre-order: the left child of node `i` is
//! node `i + 1`, the right child is stored in the node. A row goes left when
//! `x[feature] <= threshold`. A leaf has a NaN threshold and points to itself as its right
//! child, so "go left" is always false there and a row that reached a leaf stays on it.
//! Traversal is therefore a fixed number of branch-free steps (the tree's depth), which
//! lets [`IsolationTree::add_path_lengths`] walk [`LANES`] rows through a tree in lock
//! step: independent loads the CPU can overlap, and no per-node branch to mispredict.
//!
//! # Growth (Liu, Ting and Zhou 2008, Algorithm 2)
//! A node holding one row, or at depth `height_limit = ceil(log2(max_samples))`, is a
//! leaf. Otherwise a column is drawn at random among the tree's columns that are not
//! constant on the node (drawn in random order without replacement, as scikit-learn's
//! random splitter does); if all are constant the node is a leaf. The threshold is drawn
//! uniformly in `[min, max)` of that column on the node, so both children are non-empty.
//!
//! A leaf reached at depth `d` holding `size` training rows contributes the path length
//! `d + c(size)` (the paper's adjustment for the unbuilt subtree), stored in the leaf.

use rand::Rng;

/// Rows walked through a tree together by [`IsolationTree::add_path_lengths`].
pub(crate) const LANES: usize = 8;

/// Euler–Mascheroni constant, in `H(i) ≈ ln(i) + γ`.
const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// Average path length `c(n)` of an unsuccessful search in a binary search tree of `n`
/// points, the normaliser of the anomaly score (Liu, Ting and Zhou 2008, eq. 1):
///
/// `c(n) = 2 H(n - 1) - 2 (n - 1) / n` with `H(i) = ln(i) + γ`, for `n > 2`;
/// `c(2) = 1`; `c(0) = c(1) = 0`.
///
/// ```
/// use quantcore::ml::iforest::average_path_length;
/// assert_eq!(average_path_length(2), 1.0);
/// assert!((average_path_length(256) - 10.244_770_920).abs() < 1e-9);
/// ```
pub fn average_path_length(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        _ => {
            let n = n as f64;
            2.0 * ((n - 1.0).ln() + EULER_GAMMA) - 2.0 * (n - 1.0) / n
        }
    }
}

/// A node of the flat tree; see the [module docs](self) for the encoding.
#[derive(Debug, Clone, Copy)]
struct Node {
    /// Split value (go left when `x[feature] <= threshold`); NaN at a leaf.
    threshold: f64,
    /// Column of the split (an index into the full row); 0 at a leaf.
    feature: u32,
    /// Index of the right child; the node's own index at a leaf.
    right: u32,
}

/// A grown isolation tree.
#[derive(Debug, Clone)]
pub(crate) struct IsolationTree {
    nodes: Vec<Node>,
    /// Path length `depth + c(size)` of each node, read only at leaves.
    path_length: Vec<f64>,
    /// Depth of the deepest leaf: the number of traversal steps.
    depth: usize,
}

impl IsolationTree {
    /// Grows a tree on `sample`, a row-major `rows x columns.len()` block holding the
    /// subsample restricted to the tree's columns; `columns[j]` is the index in the full
    /// row of the block's column `j`.
    pub(crate) fn grow<R: Rng>(sample: &[f64], columns: &[usize], rng: &mut R) -> Self {
        let width = columns.len();
        let rows = sample.len().checked_div(width).unwrap_or(0);
        // ceil(log2(rows)), in integers.
        let height_limit = rows.max(2).next_power_of_two().trailing_zeros() as usize;
        let mut grower = Grower {
            sample,
            width,
            columns,
            column_order: (0..width).collect(),
            height_limit,
            rng,
            tree: IsolationTree {
                nodes: Vec::with_capacity(2 * rows),
                path_length: Vec::with_capacity(2 * rows),
                depth: 0,
            },
        };
        let mut members: Vec<u32> = (0..rows as u32).collect();
        grower.grow_node(&mut members, 0);
        grower.tree
    }

    /// Number of nodes.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Depth of the deepest leaf.
    #[cfg(test)]
    pub(crate) fn depth(&self) -> usize {
        self.depth
    }

    /// Columns used by the tree's splits, sorted and deduplicated.
    #[cfg(test)]
    pub(crate) fn split_columns(&self) -> Vec<usize> {
        let mut columns: Vec<usize> = self
            .nodes
            .iter()
            .filter(|node| !node.threshold.is_nan())
            .map(|node| node.feature as usize)
            .collect();
        columns.sort_unstable();
        columns.dedup();
        columns
    }

    /// Path length `h(x)` of one row (`row.len()` is the full number of columns).
    #[cfg(test)]
    pub(crate) fn path_length(&self, row: &[f64]) -> f64 {
        let mut at = 0usize;
        for _ in 0..self.depth {
            at = self.step(at, row);
        }
        self.path_length[at]
    }

    #[inline(always)]
    fn step(&self, at: usize, row: &[f64]) -> usize {
        let node = self.nodes[at];
        if row[node.feature as usize] <= node.threshold {
            at + 1
        } else {
            node.right as usize
        }
    }

    /// Adds `h(x)` of each row of `rows` (row-major, `n_features` columns) to the matching
    /// entry of `sums`. A NaN value never goes left, so it cannot derail the walk; callers
    /// reject or flag non-finite rows themselves.
    pub(crate) fn add_path_lengths(&self, rows: &[f64], n_features: usize, sums: &mut [f64]) {
        let mut row_groups = rows.chunks_exact(LANES * n_features);
        let mut sum_groups = sums.chunks_exact_mut(LANES);
        for (group, group_sums) in (&mut row_groups).zip(&mut sum_groups) {
            let mut at = [0usize; LANES];
            for _ in 0..self.depth {
                for (lane, position) in at.iter_mut().enumerate() {
                    *position = self.step(*position, &group[lane * n_features..]);
                }
            }
            for (sum, position) in group_sums.iter_mut().zip(at) {
                *sum += self.path_length[position];
            }
        }
        let tail_rows = row_groups.remainder().chunks_exact(n_features);
        for (row, sum) in tail_rows.zip(sum_groups.into_remainder()) {
            let mut at = 0usize;
            for _ in 0..self.depth {
                at = self.step(at, row);
            }
            *sum += self.path_length[at];
        }
    }
}

/// State of one tree's growth.
struct Grower<'a, R> {
    sample: &'a [f64],
    width: usize,
    columns: &'a [usize],
    /// Scratch for drawing columns without replacement at each node.
    column_order: Vec<usize>,
    height_limit: usize,
    rng: &'a mut R,
    tree: IsolationTree,
}

impl<R: Rng> Grower<'_, R> {
    /// Grows the subtree holding `members` (row indices into the sample) at `depth`,
    /// appending its nodes in pre-order.
    fn grow_node(&mut self, members: &mut [u32], depth: usize) {
        let me = self.tree.nodes.len();
        let split = if depth >= self.height_limit || members.len() <= 1 {
            None
        } else {
            self.draw_split(members)
        };
        let Some((column, threshold)) = split else {
            self.tree.nodes.push(Node {
                threshold: f64::NAN,
                feature: 0,
                right: me as u32,
            });
            self.tree
                .path_length
                .push(depth as f64 + average_path_length(members.len()));
            self.tree.depth = self.tree.depth.max(depth);
            return;
        };
        self.tree.nodes.push(Node {
            threshold,
            feature: self.columns[column] as u32,
            right: 0,
        });
        self.tree.path_length.push(0.0);

        // In-place partition: rows going left first.
        let mut left_len = 0;
        for i in 0..members.len() {
            if self.value(members[i], column) <= threshold {
                members.swap(i, left_len);
                left_len += 1;
            }
        }
        let (left, right) = members.split_at_mut(left_len);
        self.grow_node(left, depth + 1);
        self.tree.nodes[me].right = self.tree.nodes.len() as u32;
        self.grow_node(right, depth + 1);
    }

    /// Draws a column not constant on `members` and a threshold in `[min, max)`; `None`
    /// when every column of the tree is constant there.
    fn draw_split(&mut self, members: &[u32]) -> Option<(usize, f64)> {
        for drawn in 0..self.width {
            let pick = self.rng.gen_range(drawn..self.width);
            self.column_order.swap(drawn, pick);
            let column = self.column_order[drawn];
            let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
            for &row in members {
                let value = self.value(row, column);
                min = min.min(value);
                max = max.max(value);
            }
            if max > min {
                let u: f64 = self.rng.r#gen();
                let threshold = min + u * (max - min);
                // Rounding can land on `max`, which would leave the right child empty.
                let threshold = if threshold < max { threshold } else { min };
                return Some((column, threshold));
            }
        }
        None
    }

    #[inline]
    fn value(&self, row: u32, column: usize) -> f64 {
        self.sample[row as usize * self.width + column]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn average_path_length_matches_hand_computation() {
        assert_eq!(average_path_length(0), 0.0);
        assert_eq!(average_path_length(1), 0.0);
        // c(2) is defined as 1 (the formula would give 2γ - 1 ≈ 0.154).
        assert_eq!(average_path_length(2), 1.0);
        // c(3) = 2(ln 2 + γ) - 4/3 = 2(0.693147181 + 0.577215665) - 1.333333333
        //      = 2.540725692 - 1.333333333 = 1.207392358
        assert!((average_path_length(3) - 1.207_392_358).abs() < 1e-9);
        // c(256) = 2(ln 255 + γ) - 2·255/256
        //        = 2(5.541263545 + 0.577215665) - 1.9921875
        //        = 12.236958420 - 1.9921875 = 10.244770920
        assert!((average_path_length(256) - 10.244_770_920).abs() < 1e-9);
    }

    /// Two distinct rows: height limit `ceil(log2 2) = 1`, the root splits them and each
    /// lands alone at depth 1, so `h = 1 + c(1) = 1` for both, and for any other row.
    #[test]
    fn two_rows_are_split_at_the_root() {
        let mut rng = StdRng::seed_from_u64(1);
        let tree = IsolationTree::grow(&[3.0, 8.0], &[0], &mut rng);
        assert_eq!(tree.len(), 3);
        assert_eq!(tree.depth(), 1);
        for x in [3.0, 8.0, -100.0, 5.5] {
            assert_eq!(tree.path_length(&[x]), 1.0);
        }
    }

    /// Four rows on a line, height limit 2: a row is either alone at depth 1 or 2
    /// (`h` = 1 or 2), or shares a depth-2 leaf with one other row (`h = 2 + c(2) = 3`).
    /// The root leaves one row alone or splits 2/2, so at least two rows have `h >= 2`.
    #[test]
    fn four_rows_have_depth_plus_adjustment_path_lengths() {
        let sample = [0.0, 1.0, 2.0, 10.0];
        for seed in 0..20 {
            let mut rng = StdRng::seed_from_u64(seed);
            let tree = IsolationTree::grow(&sample, &[0], &mut rng);
            assert!(tree.len() <= 7);
            let lengths: Vec<f64> = sample.iter().map(|&x| tree.path_length(&[x])).collect();
            assert!(
                lengths.iter().all(|h| [1.0, 2.0, 3.0].contains(h)),
                "{lengths:?}"
            );
            assert!(
                lengths.iter().filter(|&&h| h >= 2.0).count() >= 2,
                "{lengths:?}"
            );
        }
    }

    #[test]
    fn constant_sample_is_a_single_leaf_with_c_of_size() {
        let sample = [5.0; 16];
        let mut rng = StdRng::seed_from_u64(3);
        let tree = IsolationTree::grow(&sample, &[0], &mut rng);
        assert_eq!(tree.len(), 1);
        assert_eq!(tree.depth(), 0);
        // No split possible: depth 0 plus c(16) = 2(ln 15 + γ) - 30/16.
        let expected = 2.0 * (15f64.ln() + EULER_GAMMA) - 30.0 / 16.0;
        assert!((tree.path_length(&[5.0]) - expected).abs() < 1e-12);
        assert!((tree.path_length(&[-1e9]) - expected).abs() < 1e-12);
    }

    #[test]
    fn depth_never_exceeds_height_limit() {
        let mut rng = StdRng::seed_from_u64(9);
        let sample: Vec<f64> = (0..256 * 2).map(|_| rng.r#gen::<f64>()).collect();
        let tree = IsolationTree::grow(&sample, &[0, 1], &mut rng);
        assert!(tree.depth() <= 8);
        assert!(tree.len() < 2 * 256);
    }

    /// The lock-step kernel must agree with the one-row walk, for full groups and the tail.
    #[test]
    fn lock_step_kernel_matches_single_row_walk() {
        let mut rng = StdRng::seed_from_u64(5);
        let n_features = 3;
        let sample: Vec<f64> = (0..64 * n_features).map(|_| rng.r#gen::<f64>()).collect();
        // The tree uses columns 2 and 0 of the full rows.
        let restricted: Vec<f64> = sample
            .chunks_exact(n_features)
            .flat_map(|row| [row[2], row[0]])
            .collect();
        let tree = IsolationTree::grow(&restricted, &[2, 0], &mut rng);
        let rows: Vec<f64> = (0..(2 * LANES + 3) * n_features)
            .map(|_| rng.r#gen::<f64>() * 1.4 - 0.2)
            .collect();
        let mut sums = vec![1.0; 2 * LANES + 3];
        tree.add_path_lengths(&rows, n_features, &mut sums);
        for (row, sum) in rows.chunks_exact(n_features).zip(&sums) {
            // Naive walk with explicit leaf test, independent of the lock-step encoding.
            let mut at = 0;
            let mut depth = 0;
            while !tree.nodes[at].threshold.is_nan() {
                let node = tree.nodes[at];
                at = if row[node.feature as usize] <= node.threshold {
                    at + 1
                } else {
                    node.right as usize
                };
                depth += 1;
            }
            let leaf_extra = tree.path_length[at] - depth as f64;
            assert!(leaf_extra >= 0.0);
            assert!((sum - 1.0 - tree.path_length[at]).abs() < 1e-12);
        }
    }
}
