package barrier

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// DefaultTorchMasterPort is MASTER_PORT when InjectorOptions.TorchMasterPort is 0.
const DefaultTorchMasterPort = 29500

// RolePeers is the discovery information of one task role: its name and the
// pod IP of each task, by task index.
type RolePeers struct {
	Name string
	IPs  []string
}

// InjectorOptions selects what the injector exports besides FB_{ROLE}_IPS,
// FB_{ROLE}_ADDRESSES and FB_{ROLE}_COUNT.
type InjectorOptions struct {
	// TaskRoleName and TaskIndex name the task the script is for; they become
	// FB_ROLE and FB_INDEX (and RANK with Torch). Empty TaskRoleName leaves
	// them out. FrameworkBarrier fills them from FC_TASKROLE_NAME and
	// FC_TASK_INDEX when unset.
	TaskRoleName string
	TaskIndex    int

	// Torch exports torch.distributed's env:// variables: MASTER_ADDR (task 0
	// of TorchMasterRole), MASTER_PORT, WORLD_SIZE (all tasks) and RANK (the
	// master role's tasks first, then the other roles in spec order). Default
	// false.
	Torch bool
	// TorchMasterRole is the role whose task 0 is the master. Default: the
	// first role.
	TorchMasterRole string
	// TorchMasterPort is MASTER_PORT. Default 29500.
	TorchMasterPort int

	// Hostfile, when true, makes FrameworkBarrier write an MPI hostfile (one
	// "IP slots=N" line per task, in RANK order) and export FB_HOSTFILE with
	// its absolute path. Default false.
	Hostfile bool
	// HostfileSlots is N in "slots=N". Default 1.
	HostfileSlots int
	// HostfilePath is the hostfile's path as FB_HOSTFILE exports it; set by
	// FrameworkBarrier.
	HostfilePath string

	// PodTemplates keeps the task roles' pod templates
	// (spec.taskRoles[].task.pod) in framework.json. Default false: they are
	// left out, since a template may name secrets, images and commands that
	// a peer has no need to read (FrameworkController's barrier writes them).
	PodTemplates bool
}

// RoleEnvName maps a task role name to the infix of its variables:
// ASCII letters are upper-cased, '-' and '.' become '_', digits and '_' stay.
// Any other character, or an empty name, is an error.
func RoleEnvName(role string) (string, error) {
	if role == "" {
		return "", fmt.Errorf("task role name is empty")
	}
	b := make([]byte, 0, len(role))
	for i := 0; i < len(role); i++ {
		c := role[i]
		switch {
		case c >= 'a' && c <= 'z':
			b = append(b, c-'a'+'A')
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_':
			b = append(b, c)
		case c == '-' || c == '.':
			b = append(b, '_')
		default:
			return "", fmt.Errorf("task role name %q: character %q cannot be part of a shell variable name; use letters, digits, '-', '.' or '_'", role, c)
		}
	}
	return string(b), nil
}

// ValidatePodIP accepts only what a pod IP in a pod's status can be: an IPv4 or
// IPv6 address in its canonical text form, without a zone. A zone ("%eth0")
// may hold any byte, a newline or NUL included, and a non-canonical form
// ("010.0.0.1", "FD00::1") is not what the kubelet reports; both would reach
// injector.sh and the MPI hostfile, so both are refused.
func ValidatePodIP(ip string) error {
	a, err := netip.ParseAddr(ip)
	switch {
	case err != nil:
		return fmt.Errorf("pod IP %q is not an IP address", ip)
	case a.Zone() != "":
		return fmt.Errorf("pod IP %q carries an IPv6 zone, which no pod IP has", ip)
	case a.String() != ip:
		return fmt.Errorf("pod IP %q is not in canonical form (want %q)", ip, a.String())
	}
	return nil
}

// ShellQuote returns s as one single-quoted POSIX sh word whose value is
// exactly s. NUL cannot be held by a shell variable and is an error.
func ShellQuote(s string) (string, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return "", fmt.Errorf("value %q contains a NUL byte", s)
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'", nil
}

// orderedRoles returns roles in RANK order: the torch master role first (when
// Torch), then the others in their given order.
func orderedRoles(roles []RolePeers, opts InjectorOptions) []RolePeers {
	if !opts.Torch || opts.TorchMasterRole == "" {
		return roles
	}
	out := make([]RolePeers, 0, len(roles))
	for _, r := range roles {
		if r.Name == opts.TorchMasterRole {
			out = append(out, r)
		}
	}
	for _, r := range roles {
		if r.Name != opts.TorchMasterRole {
			out = append(out, r)
		}
	}
	return out
}

// validatePeers checks role names (unique after mapping) and IPs, and the own
// task and torch master role. It returns the mapped names by role.
func validatePeers(roles []RolePeers, opts InjectorOptions) (map[string]string, error) {
	envNames := make(map[string]string, len(roles))
	byEnv := make(map[string]string, len(roles))
	for _, r := range roles {
		env, err := RoleEnvName(r.Name)
		if err != nil {
			return nil, err
		}
		if prev, ok := byEnv[env]; ok {
			return nil, fmt.Errorf("task roles %q and %q both map to FB_%s_*; rename one of them", prev, r.Name, env)
		}
		byEnv[env] = r.Name
		envNames[r.Name] = env
		for i, ip := range r.IPs {
			if err := ValidatePodIP(ip); err != nil {
				return nil, fmt.Errorf("task %s-%d: %w", r.Name, i, err)
			}
		}
	}
	if opts.TaskRoleName != "" {
		r, ok := findRole(roles, opts.TaskRoleName)
		if !ok {
			return nil, fmt.Errorf("own task role %q is not a role of the framework", opts.TaskRoleName)
		}
		if opts.TaskIndex < 0 || opts.TaskIndex >= len(r.IPs) {
			return nil, fmt.Errorf("own task index %d is out of range for role %q with %d tasks", opts.TaskIndex, r.Name, len(r.IPs))
		}
	}
	if opts.Torch {
		if len(roles) == 0 {
			return nil, fmt.Errorf("torch variables need at least one task role")
		}
		master := opts.TorchMasterRole
		if master == "" {
			master = roles[0].Name
		}
		r, ok := findRole(roles, master)
		if !ok {
			return nil, fmt.Errorf("torch master role %q is not a role of the framework", master)
		}
		if len(r.IPs) == 0 {
			return nil, fmt.Errorf("torch master role %q has no tasks", master)
		}
	}
	return envNames, nil
}

func findRole(roles []RolePeers, name string) (RolePeers, bool) {
	for _, r := range roles {
		if r.Name == name {
			return r, true
		}
	}
	return RolePeers{}, false
}

// RenderInjector renders the injector script: POSIX sh meant to be sourced
// (". ./injector.sh"). For each role it sets and exports FB_{ROLE}_IPS
// (comma-separated pod IPs by task index), FB_{ROLE}_ADDRESSES (each IP with
// ":${FB_{ROLE}_PORT}", expanded when sourced) and FB_{ROLE}_COUNT. Every value
// is single-quoted, so no text from the Framework is ever executed.
func RenderInjector(roles []RolePeers, opts InjectorOptions) ([]byte, error) {
	envNames, err := validatePeers(roles, opts)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString("# Generated by podkit barrier. Source it: . ./injector.sh\n")
	b.WriteString("# FB_{ROLE}_ADDRESSES use FB_{ROLE}_PORT, which the caller sets before sourcing.\n")
	set := func(name, value string) {
		q, _ := ShellQuote(value) // values are validated: no NUL
		fmt.Fprintf(&b, "%s=%s\nexport %s\n", name, q, name)
	}
	for _, r := range roles {
		env := envNames[r.Name]
		prefix := "FB_" + env
		set(prefix+"_IPS", strings.Join(r.IPs, ","))
		// ADDRESSES: 'ip:'"${FB_X_PORT-}"',ip:'"${FB_X_PORT-}" — literal parts
		// quoted, the port expanded inside double quotes.
		fmt.Fprintf(&b, "%s_ADDRESSES=", prefix)
		if len(r.IPs) == 0 {
			b.WriteString("''")
		}
		for i, ip := range r.IPs {
			lit := ip + ":"
			if i > 0 {
				lit = "," + lit
			}
			q, _ := ShellQuote(lit)
			fmt.Fprintf(&b, "%s\"${%s_PORT-}\"", q, prefix)
		}
		fmt.Fprintf(&b, "\nexport %s_ADDRESSES\n", prefix)
		set(prefix+"_COUNT", strconv.Itoa(len(r.IPs)))
	}
	if opts.TaskRoleName != "" {
		set("FB_ROLE", opts.TaskRoleName)
		set("FB_INDEX", strconv.Itoa(opts.TaskIndex))
	}
	if opts.Torch {
		ordered := orderedRoles(roles, withMaster(roles, opts))
		port := opts.TorchMasterPort
		if port == 0 {
			port = DefaultTorchMasterPort
		}
		world, rank := 0, -1
		for _, r := range ordered {
			if r.Name == opts.TaskRoleName {
				rank = world + opts.TaskIndex
			}
			world += len(r.IPs)
		}
		set("MASTER_ADDR", ordered[0].IPs[0])
		set("MASTER_PORT", strconv.Itoa(port))
		set("WORLD_SIZE", strconv.Itoa(world))
		if rank >= 0 {
			set("RANK", strconv.Itoa(rank))
		}
	}
	if opts.Hostfile && opts.HostfilePath != "" {
		set("FB_HOSTFILE", opts.HostfilePath)
	}
	return b.Bytes(), nil
}

func withMaster(roles []RolePeers, opts InjectorOptions) InjectorOptions {
	if opts.TorchMasterRole == "" && len(roles) > 0 {
		opts.TorchMasterRole = roles[0].Name
	}
	return opts
}

// RenderHostfile renders an MPI hostfile: one "IP slots=N" line per task, in
// the same order as RANK (see InjectorOptions.Torch). slots < 1 means 1.
func RenderHostfile(roles []RolePeers, opts InjectorOptions) ([]byte, error) {
	if _, err := validatePeers(roles, InjectorOptions{Torch: opts.Torch, TorchMasterRole: opts.TorchMasterRole}); err != nil {
		return nil, err
	}
	slots := opts.HostfileSlots
	if slots < 1 {
		slots = 1
	}
	var b bytes.Buffer
	for _, r := range orderedRoles(roles, opts) {
		for _, ip := range r.IPs {
			fmt.Fprintf(&b, "%s slots=%d\n", ip, slots)
		}
	}
	return b.Bytes(), nil
}
