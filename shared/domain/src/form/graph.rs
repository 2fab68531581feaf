//! The items of a definition as a flat graph: each item depends on its section and on
//! the fields its condition reads. Shared by the visibility engine and by the cycle
//! check, so that both agree on what a cycle is.
//!
//! Everything here is iterative: a definition that was never validated may hold long
//! chains of conditions, and recursion depth must not depend on input.

use std::collections::HashMap;

use super::definition::{Field, FieldKind, FormDefinition};
use super::parse::{index, join};

pub(crate) struct Node<'a> {
    pub field: &'a Field,
    /// The enclosing section's node.
    pub parent: Option<usize>,
    /// Position inside the parent's (or the root's) `items`.
    pub pos: usize,
}

pub(crate) struct Flat<'a> {
    /// Every item, depth first, a section before its items.
    pub nodes: Vec<Node<'a>>,
    /// Id → first node with that id.
    pub by_id: HashMap<&'a str, usize>,
}

impl<'a> Flat<'a> {
    pub fn new(def: &'a FormDefinition) -> Self {
        let mut nodes = Vec::new();
        // (parent node, items, next position)
        let mut stack: Vec<(Option<usize>, &'a [Field], usize)> = vec![(None, &def.items, 0)];
        while let Some((parent, items, pos)) = stack.last_mut() {
            let Some(field) = items.get(*pos) else {
                stack.pop();
                continue;
            };
            let node = Node {
                field,
                parent: *parent,
                pos: *pos,
            };
            *pos += 1;
            let i = nodes.len();
            nodes.push(node);
            if let FieldKind::Section { items } = &field.kind {
                stack.push((Some(i), items, 0));
            }
        }
        let mut by_id = HashMap::with_capacity(nodes.len());
        for (i, n) in nodes.iter().enumerate() {
            by_id.entry(n.field.id.as_str()).or_insert(i);
        }
        Flat { nodes, by_id }
    }

    /// `items[2].items[0]`-style path of a node.
    pub fn path(&self, i: usize) -> String {
        let mut chain = vec![i];
        let mut cur = i;
        while let Some(p) = self.nodes[cur].parent {
            chain.push(p);
            cur = p;
        }
        let mut path = String::new();
        for &n in chain.iter().rev() {
            let base = if path.is_empty() {
                "items".to_owned()
            } else {
                join(&path, "items")
            };
            path = index(&base, self.nodes[n].pos);
        }
        path
    }

    /// For each node, the nodes it depends on: its section, then the fields its
    /// condition reads (unknown ids are left out).
    pub fn deps(&self) -> Vec<Vec<usize>> {
        self.nodes
            .iter()
            .map(|n| {
                let mut d: Vec<usize> = n.parent.into_iter().collect();
                if let Some(c) = &n.field.show_if {
                    d.extend(
                        c.referenced_fields()
                            .into_iter()
                            .filter_map(|id| self.by_id.get(id).copied()),
                    );
                }
                d
            })
            .collect()
    }
}

/// Strongly connected components (Tarjan, iterative), each emitted after every
/// component it depends on: evaluating in this order sees dependencies first.
pub(crate) fn sccs(adj: &[Vec<usize>]) -> Vec<Vec<usize>> {
    const UNSEEN: usize = usize::MAX;
    let n = adj.len();
    let mut idx = vec![UNSEEN; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut out = Vec::new();
    let mut next = 0;
    let mut call: Vec<(usize, usize)> = Vec::new();
    for root in 0..n {
        if idx[root] != UNSEEN {
            continue;
        }
        idx[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        call.push((root, 0));
        while let Some(&mut (v, ref mut edge)) = call.last_mut() {
            if let Some(&w) = adj[v].get(*edge) {
                *edge += 1;
                if idx[w] == UNSEEN {
                    idx[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    call.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(idx[w]);
                }
            } else {
                call.pop();
                if let Some(&(u, _)) = call.last() {
                    low[u] = low[u].min(low[v]);
                }
                if low[v] == idx[v] {
                    let mut comp = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        comp.push(w);
                        if w == v {
                            break;
                        }
                    }
                    comp.sort_unstable();
                    out.push(comp);
                }
            }
        }
    }
    out
}

/// Whether a component is a cycle: more than one node, or one node depending on itself.
pub(crate) fn is_cycle(comp: &[usize], adj: &[Vec<usize>]) -> bool {
    comp.len() > 1 || adj[comp[0]].contains(&comp[0])
}

/// One concrete cycle through `start` inside its component, as node indices from
/// `start` back to `start` (breadth first, so the shortest).
pub(crate) fn cycle_through(start: usize, comp: &[usize], adj: &[Vec<usize>]) -> Vec<usize> {
    let mut prev: HashMap<usize, usize> = HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for &w in &adj[v] {
            if !comp.contains(&w) {
                continue;
            }
            if w == start {
                let mut path = vec![start];
                let mut cur = v;
                while cur != start {
                    path.push(cur);
                    cur = prev[&cur];
                }
                path.push(start);
                return forward(path);
            }
            if let std::collections::hash_map::Entry::Vacant(e) = prev.entry(w) {
                e.insert(v);
                queue.push_back(w);
            }
        }
    }
    vec![start]
}

/// `[start, x_k, …, x_1, start]` built backwards → `[start, x_1, …, x_k, start]`.
fn forward(mut path: Vec<usize>) -> Vec<usize> {
    let n = path.len();
    if n > 2 {
        path[1..n - 1].reverse();
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sccs_in_dependency_order() {
        // 0 → 1 → 2 → 1, 3 alone, 4 → 4
        let adj = vec![vec![1], vec![2], vec![1], vec![], vec![4]];
        let comps = sccs(&adj);
        let pos = |n: usize| comps.iter().position(|c| c.contains(&n)).unwrap();
        assert!(pos(1) < pos(0), "dependencies first: {comps:?}");
        assert_eq!(comps[pos(1)], vec![1, 2]);
        assert!(is_cycle(&comps[pos(1)], &adj));
        assert!(!is_cycle(&comps[pos(0)], &adj));
        assert!(!is_cycle(&comps[pos(3)], &adj));
        assert!(is_cycle(&comps[pos(4)], &adj));
    }

    #[test]
    fn finds_the_cycle_path_forward() {
        // 0 → 1 → 2 → 0, and 1 → 3 (outside)
        let adj = vec![vec![1], vec![2, 3], vec![0], vec![]];
        assert_eq!(cycle_through(0, &[0, 1, 2], &adj), vec![0, 1, 2, 0]);
        assert_eq!(cycle_through(1, &[0, 1, 2], &adj), vec![1, 2, 0, 1]);
        let self_loop = vec![vec![0]];
        assert_eq!(cycle_through(0, &[0], &self_loop), vec![0, 0]);
    }

    #[test]
    fn long_chain_needs_no_deep_stack() {
        let n = 200_000;
        let adj: Vec<Vec<usize>> = (0..n)
            .map(|i| if i + 1 < n { vec![i + 1] } else { vec![0] })
            .collect();
        let comps = sccs(&adj);
        assert_eq!(comps.len(), 1);
        assert_eq!(comps[0].len(), n);
    }
}
