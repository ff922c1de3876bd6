package safetar

import (
	"path"
	"strings"
)

// maxLinkHops is how many symlinks one resolution may follow, as Linux's
// MAXSYMLINKS (40): more is a loop.
const maxLinkHops = 40

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
	// Resolve dir(name)/target component by component: stack holds the
	// resolved components so far, todo what is left to walk.
	todo := strings.Split(path.Dir(name)+"/"+target, "/")
	stack := make([]string, 0, len(todo))
	hops := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return reject("symlink %q -> %q resolves outside the root", name, target)
			}
			stack = stack[:len(stack)-1]
			continue
		}
		stack = append(stack, c)
		t, isLink := l[strings.Join(stack, "/")]
		if !isLink {
			continue
		}
		if hops++; hops > maxLinkHops {
			return reject("symlink %q -> %q: more than %d links to follow (a loop)", name, target, maxLinkHops)
		}
		if path.IsAbs(t) {
			return reject("symlink %q -> %q goes through absolute symlink %q", name, target, strings.Join(stack, "/"))
		}
		stack = stack[:len(stack)-1]
		todo = append(strings.Split(t, "/"), todo...)
	}
	return nil
}
