//! A line diff of two texts in the unified format (`-`, `+` and ` ` lines, hunks with three lines
//! of context), for showing the user an edit Strata would not apply. Pure; quadratic in the lines
//! it compares, so callers show it for code the size of a function, not of a file.

/// The lines of `old` and `new` as a unified diff with `@@` hunk headers (1-based line numbers);
/// empty when they are equal.
pub fn unified(old: &str, new: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    // The longest common subsequence, table from the ends.
    let mut common = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            common[i][j] = if a[i] == b[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    // The edit script: (tag, line in old, line in new, text).
    let mut script: Vec<(char, usize, usize, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            script.push((' ', i, j, a[i]));
            (i, j) = (i + 1, j + 1);
        } else if i < a.len() && (j == b.len() || common[i + 1][j] >= common[i][j + 1]) {
            // Removals before additions, as diff(1) shows them.
            script.push(('-', i, j, a[i]));
            i += 1;
        } else {
            script.push(('+', i, j, b[j]));
            j += 1;
        }
    }
    const CONTEXT: usize = 3;
    let changed: Vec<usize> = (0..script.len()).filter(|&k| script[k].0 != ' ').collect();
    let mut out = String::new();
    let mut k = 0;
    while k < changed.len() {
        // A hunk: changes closer than twice the context join.
        let first = changed[k];
        let mut last = first;
        while k + 1 < changed.len() && changed[k + 1] <= last + 2 * CONTEXT + 1 {
            k += 1;
            last = changed[k];
        }
        k += 1;
        let (start, end) = (
            first.saturating_sub(CONTEXT),
            (last + CONTEXT + 1).min(script.len()),
        );
        let lines = &script[start..end];
        let old_count = lines.iter().filter(|l| l.0 != '+').count();
        let new_count = lines.iter().filter(|l| l.0 != '-').count();
        out.push_str(&format!(
            "@@ -{},{old_count} +{},{new_count} @@\n",
            lines[0].1 + 1,
            lines[0].2 + 1
        ));
        for (tag, _, _, text) in lines {
            out.push(*tag);
            out.push_str(text);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::unified;

    #[test]
    fn a_changed_line_shows_with_its_context() {
        let old = "fn add(a: u32, b: u32) -> u32 {\n    a + b\n}\n";
        let new = "/// Adds.\nfn add(a: u32, b: u32) -> u32 {\n    a.wrapping_add(b)\n";
        assert_eq!(
            unified(old, new),
            "@@ -1,3 +1,3 @@\n+/// Adds.\n fn add(a: u32, b: u32) -> u32 {\n-    a + b\n-}\n+    a.wrapping_add(b)\n"
        );
        assert_eq!(unified(old, old), "");
    }

    #[test]
    fn distant_changes_are_separate_hunks() {
        let old: String = (1..=20).map(|i| format!("line {i}\n")).collect();
        let new = old
            .replace("line 2\n", "line two\n")
            .replace("line 19\n", "");
        let diff = unified(&old, &new);
        assert_eq!(diff.matches("@@ -").count(), 2, "{diff}");
        assert!(
            diff.starts_with("@@ -1,5 +1,5 @@\n line 1\n-line 2\n+line two\n"),
            "{diff}"
        );
        assert!(
            diff.contains("@@ -16,5 +16,4 @@\n line 16\n line 17\n line 18\n-line 19\n line 20\n"),
            "{diff}"
        );
    }
}
