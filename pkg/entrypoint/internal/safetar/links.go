package safetar

import (
	"path"
	"strings"
)

// maxLinkHops is how many symlinks one resolution may follow, as Linux's
// MAXSYMLINKS (40): more is a loop.
const maxLinkHops = 40

// maxLinkSteps bounds the components walked to resolve one link, so that many long chains cannot
// make the check itself the expensive part of an archive.
const maxLinkSteps = 4096

// Links are the symlinks of a tree being built: slash-separated path relative
// to the tree's root → link target. A textual check of each target on its own
// is not enough: "a/b/s -> ../.." stays inside, but "a/b/l -> s/.." then
// resolves through s to the root's parent. Check resolves every link the way
// the kernel will, through the other links of the same tree, once the tree is
// complete.
type Links map[string]string

// Check returns an error naming the first link (in no particular order) that
// is absolute, resolves outside the root, or loops. Dangling links whose path
// stays inside are allowed: the kernel fails to open them, nothing escapes.
func (l Links) Check() error {
	for name, target := range l {
		if err := l.checkOne(name, target); err != nil {
			return err
		}
	}
	return nil
}

func (l Links) checkOne(name, target string) error {
	if target == "" || path.IsAbs(target) || strings.ContainsRune(target, 0) {
		return reject("symlink %q has absolute or empty target %q", name, target)
	}
	// Resolve dir(name)/target component by component: cur holds the resolved path so far
	// ("a/b"), ends where each of its components ends (to pop one), todo what is left to walk.
	todo := strings.Split(path.Dir(name)+"/"+target, "/")
	cur := make([]byte, 0, len(name)+len(target))
	var ends []int
	hops, steps := 0, 0
	for len(todo) > 0 {
		if steps++; steps > maxLinkSteps {
			return reject("symlink %q -> %q: resolving it takes more than %d steps", name, target, maxLinkSteps)
		}
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(ends) == 0 {
				return reject("symlink %q -> %q resolves outside the root", name, target)
			}
			ends = ends[:len(ends)-1]
			cur = cur[:lastEnd(ends)]
			continue
		}
		if len(cur) > 0 {
			cur = append(cur, '/')
		}
		cur = append(cur, c...)
		ends = append(ends, len(cur))
		t, isLink := l[string(cur)] // no allocation for a map lookup
		if !isLink {
			continue
		}
		if hops++; hops > maxLinkHops {
			return reject("symlink %q -> %q: more than %d links to follow (a loop)", name, target, maxLinkHops)
		}
		if path.IsAbs(t) {
			return reject("symlink %q -> %q goes through absolute symlink %q", name, target, cur)
		}
		ends = ends[:len(ends)-1]
		cur = cur[:lastEnd(ends)]
		todo = append(strings.Split(t, "/"), todo...)
	}
	return nil
}

// lastEnd is where the path of the components in ends stops.
func lastEnd(ends []int) int {
	if len(ends) == 0 {
		return 0
	}
	return ends[len(ends)-1]
}
