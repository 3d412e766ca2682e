package stix

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The STIX 2.1 patterning language (specification section 9), following the
// OASIS ANTLR grammar (STIXPattern.g4). Precedence, loosest first:
// FOLLOWEDBY, OR, AND between observation expressions; OR, AND between
// comparison expressions. Parentheses are not kept in the AST: String()
// parenthesises every binary expression, so its output re-parses to the
// same tree.

// maxPatternDepth bounds parenthesis/bracket nesting so hostile input cannot
// exhaust the stack.
const maxPatternDepth = 64

// Pattern is a parsed STIX pattern.
type Pattern struct {
	Root ObservationExpr
}

// String renders the pattern in a canonical form that ParsePattern accepts.
func (p *Pattern) String() string { return stringOf(p.Root.write) }

// stringOf returns what write writes: the String of every node of a
// pattern, each written into one builder (a pattern's rendering is part of
// every indicator's fingerprint).
func stringOf(write func(*strings.Builder)) string {
	var b strings.Builder
	b.Grow(64)
	write(&b)
	return b.String()
}

// ObservationExpr is one of *ObservationComparison, *ObservationBinary,
// *ObservationQualified.
type ObservationExpr interface {
	fmt.Stringer
	isObservation()
	write(*strings.Builder)
}

// ObservationComparison is "[ comparison-expression ]".
type ObservationComparison struct {
	Expr ComparisonExpr
}

// ObservationBinary joins two observation expressions with AND, OR or
// FOLLOWEDBY.
type ObservationBinary struct {
	Op          string
	Left, Right ObservationExpr
}

// Qualifier kinds.
const (
	QualifierWithin    = "WITHIN"
	QualifierRepeats   = "REPEATS"
	QualifierStartStop = "START"
)

// ObservationQualified is an observation expression followed by a qualifier.
type ObservationQualified struct {
	Expr ObservationExpr
	Kind string // QualifierWithin, QualifierRepeats or QualifierStartStop
	// Within: the seconds as written (an integer or float literal).
	Seconds string
	// Repeats: the count, > 0.
	Times int64
	// StartStop: the interval.
	Start, Stop time.Time
}

func (*ObservationComparison) isObservation() {}
func (*ObservationBinary) isObservation()     {}
func (*ObservationQualified) isObservation()  {}

func (o *ObservationComparison) String() string { return stringOf(o.write) }
func (o *ObservationBinary) String() string     { return stringOf(o.write) }
func (o *ObservationQualified) String() string  { return stringOf(o.write) }

func (o *ObservationComparison) write(b *strings.Builder) {
	b.WriteByte('[')
	o.Expr.write(b)
	b.WriteByte(']')
}

func (o *ObservationBinary) write(b *strings.Builder) { writeBinary(b, o.Left, o.Op, o.Right) }

// patternNode is a node of a pattern's tree that writes itself.
type patternNode interface{ write(*strings.Builder) }

// writeBinary writes "(left op right)", as every binary expression of a
// pattern is written.
func writeBinary(b *strings.Builder, left patternNode, op string, right patternNode) {
	b.WriteByte('(')
	left.write(b)
	b.WriteByte(' ')
	b.WriteString(op)
	b.WriteByte(' ')
	right.write(b)
	b.WriteByte(')')
}

func (o *ObservationQualified) write(b *strings.Builder) {
	o.Expr.write(b)
	switch o.Kind {
	case QualifierWithin:
		b.WriteString(" WITHIN ")
		b.WriteString(o.Seconds)
		b.WriteString(" SECONDS")
	case QualifierRepeats:
		b.WriteString(" REPEATS ")
		b.WriteString(strconv.FormatInt(o.Times, 10))
		b.WriteString(" TIMES")
	default:
		b.WriteString(" START t'")
		b.WriteString(formatPatternTime(o.Start))
		b.WriteString("' STOP t'")
		b.WriteString(formatPatternTime(o.Stop))
		b.WriteByte('\'')
	}
}

// ComparisonExpr is *ComparisonBinary or *Comparison.
type ComparisonExpr interface {
	fmt.Stringer
	isComparison()
	write(*strings.Builder)
}

// ComparisonBinary joins two comparison expressions with AND or OR.
type ComparisonBinary struct {
	Op          string
	Left, Right ComparisonExpr
}

// Comparison tests one object path: "path [NOT] op value", or "EXISTS path".
type Comparison struct {
	Path    ObjectPath
	Negated bool
	Op      string    // =, !=, >, <, >=, <=, IN, LIKE, MATCHES, ISSUBSET, ISSUPERSET, EXISTS
	Value   Literal   // all but IN and EXISTS
	Set     []Literal // IN
}

func (*ComparisonBinary) isComparison() {}
func (*Comparison) isComparison()       {}

func (c *ComparisonBinary) String() string { return stringOf(c.write) }
func (c *Comparison) String() string       { return stringOf(c.write) }

func (c *ComparisonBinary) write(b *strings.Builder) { writeBinary(b, c.Left, c.Op, c.Right) }

func (c *Comparison) write(b *strings.Builder) {
	if c.Op == "EXISTS" {
		b.WriteString("EXISTS ")
		c.Path.write(b)
		return
	}
	c.Path.write(b)
	if c.Negated {
		b.WriteString(" NOT")
	}
	b.WriteByte(' ')
	b.WriteString(c.Op)
	b.WriteByte(' ')
	if c.Op == "IN" {
		b.WriteByte('(')
		for i, l := range c.Set {
			if i > 0 {
				b.WriteString(", ")
			}
			l.write(b)
		}
		b.WriteByte(')')
	} else {
		c.Value.write(b)
	}
}

// ObjectPath is "type:prop.step[idx]...".
type ObjectPath struct {
	ObjectType string
	Steps      []PathStep
}

// PathStep is one property name or list index of an object path.
type PathStep struct {
	Key   string // property name; "" for an index step
	Index int64  // list index when Key == "" and !Any
	Any   bool   // [*]
}

// IsIndex reports whether the step is a list index ([n] or [*]).
func (s PathStep) IsIndex() bool { return s.Key == "" }

func (p ObjectPath) String() string { return stringOf(p.write) }

func (p ObjectPath) write(b *strings.Builder) {
	b.WriteString(p.ObjectType)
	b.WriteByte(':')
	for i, s := range p.Steps {
		switch {
		case s.Any:
			b.WriteString("[*]")
		case s.Key == "":
			b.WriteByte('[')
			b.WriteString(strconv.FormatInt(s.Index, 10))
			b.WriteByte(']')
		default:
			if i > 0 {
				b.WriteByte('.')
			}
			if isPlainIdent(s.Key) {
				b.WriteString(s.Key)
			} else {
				writeQuoted(b, s.Key)
			}
		}
	}
}

// Literal kinds.
const (
	LitString    = "string"
	LitInt       = "int"
	LitFloat     = "float"
	LitBool      = "bool"
	LitTimestamp = "timestamp"
	LitHex       = "hex"
	LitBinary    = "binary"
)

// Literal is a constant in a comparison.
type Literal struct {
	Kind string
	// Text is the decoded string (LitString), the number as written
	// (LitInt, LitFloat), "true"/"false", the timestamp as written, or the
	// hex/base64 text between the quotes.
	Text  string
	Int   int64     // LitInt
	Time  time.Time // LitTimestamp
	Bytes []byte    // LitHex, LitBinary
}

func (l Literal) String() string { return stringOf(l.write) }

func (l Literal) write(b *strings.Builder) {
	switch l.Kind {
	case LitString:
		writeQuoted(b, l.Text)
	case LitTimestamp:
		writePrefixed(b, 't', l.Text)
	case LitHex:
		writePrefixed(b, 'h', l.Text)
	case LitBinary:
		writePrefixed(b, 'b', l.Text)
	default:
		b.WriteString(l.Text)
	}
}

// writeQuoted writes s as a pattern's quoted string.
func writeQuoted(b *strings.Builder, s string) {
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('\'')
}

// writePrefixed writes a typed literal: its one-letter prefix and its
// text in single quotes (t'…', h'…', b'…'); the text was validated as a
// timestamp, hex digits or base64, so it holds no quote to escape.
func writePrefixed(b *strings.Builder, prefix byte, text string) {
	b.WriteByte(prefix)
	b.WriteByte('\'')
	b.WriteString(text)
	b.WriteByte('\'')
}

// quotePatternString is s as a pattern's string literal.
func quotePatternString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	writeQuoted(&b, s)
	return b.String()
}

func formatPatternTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.999999999Z")
}

// isPlainIdent reports whether s is an IdentifierWithoutHyphen.
func isPlainIdent(s string) bool {
	if s == "" || !(isAlpha(s[0]) || s[0] == '_') {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !(isAlpha(s[i]) || isDigit(s[i]) || s[i] == '_') {
			return false
		}
	}
	return !isKeyword(s)
}

func isAlpha(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isKeyword(s string) bool {
	switch s {
	case "AND", "OR", "NOT", "FOLLOWEDBY", "LIKE", "MATCHES", "ISSUPERSET", "ISSUBSET",
		"EXISTS", "IN", "START", "STOP", "SECONDS", "TIMES", "WITHIN", "REPEATS", "true", "false":
		return true
	}
	return false
}

// ---- lexer ----

type tokKind uint8

const (
	tEOF tokKind = iota
	tIdent
	tString
	tInt
	tFloat
	tBool
	tTimestamp
	tHex
	tBinary
	tPunct // [ ] ( ) : . , *
	tOp    // = != > < >= <=
	tKeyword
)

type token struct {
	kind tokKind
	off  int
	text string // source text; decoded value for tString and prefixed literals
}

func (t token) describe() string {
	if t.kind == tEOF {
		return "end of pattern"
	}
	if t.kind == tString {
		return "string " + quotePatternString(t.text)
	}
	return strconv.Quote(t.text)
}

type patternParser struct {
	src   string
	pos   int
	tok   token
	depth int
}

// ParsePattern parses a STIX patterning-language expression. Errors are
// *PatternError (wrapping ErrInvalidPattern) giving the byte offset.
func ParsePattern(s string) (*Pattern, error) {
	p := &patternParser{src: s}
	if err := p.next(); err != nil {
		return nil, err
	}
	root, err := p.observationFollowedBy()
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tEOF {
		return nil, p.unexpected()
	}
	return &Pattern{Root: root}, nil
}

// ValidatePattern reports whether s is a valid STIX pattern.
func ValidatePattern(s string) error {
	_, err := ParsePattern(s)
	return err
}

func (p *patternParser) errAt(off int, format string, args ...any) error {
	return &PatternError{Offset: off, Msg: fmt.Sprintf(format, args...)}
}

func (p *patternParser) unexpected() error {
	return p.errAt(p.tok.off, "unexpected token %s", p.tok.describe())
}

func (p *patternParser) next() error {
	s := p.src
	for p.pos < len(s) && (s[p.pos] == ' ' || s[p.pos] == '\t' || s[p.pos] == '\n' || s[p.pos] == '\r') {
		p.pos++
	}
	start := p.pos
	if p.pos >= len(s) {
		p.tok = token{kind: tEOF, off: start}
		return nil
	}
	c := s[p.pos]
	switch {
	case c == '\'':
		str, err := p.lexQuoted()
		if err != nil {
			return err
		}
		p.tok = token{kind: tString, off: start, text: str}
		return nil
	case (c == 't' || c == 'h' || c == 'b') && p.pos+1 < len(s) && s[p.pos+1] == '\'':
		p.pos++
		str, err := p.lexQuoted()
		if err != nil {
			return err
		}
		kind := map[byte]tokKind{'t': tTimestamp, 'h': tHex, 'b': tBinary}[c]
		p.tok = token{kind: kind, off: start, text: str}
		return nil
	case isAlpha(c) || c == '_':
		p.pos++
		for p.pos < len(s) && (isAlpha(s[p.pos]) || isDigit(s[p.pos]) || s[p.pos] == '_' || s[p.pos] == '-') {
			p.pos++
		}
		word := s[start:p.pos]
		switch {
		case word == "true" || word == "false":
			p.tok = token{kind: tBool, off: start, text: word}
		case isKeyword(word):
			p.tok = token{kind: tKeyword, off: start, text: word}
		default:
			p.tok = token{kind: tIdent, off: start, text: word}
		}
		return nil
	case isDigit(c) || c == '-' || c == '+' || (c == '.' && p.numberMayFollow()):
		return p.lexNumber()
	case c == '!' || c == '=' || c == '<' || c == '>':
		p.pos++
		if p.pos < len(s) && s[p.pos] == '=' {
			p.pos++
		} else if c == '!' {
			return p.errAt(start, "unexpected character '!'")
		}
		op := s[start:p.pos]
		if op == "==" {
			return p.errAt(start, "unexpected token \"==\"")
		}
		p.tok = token{kind: tOp, off: start, text: op}
		return nil
	case strings.IndexByte("[]():.,*", c) >= 0:
		p.pos++
		p.tok = token{kind: tPunct, off: start, text: s[start:p.pos]}
		return nil
	}
	return p.errAt(start, "unexpected character %q", rune(c))
}

// lexQuoted reads '...' at p.pos with the escapes \' and \\ (the only two
// the grammar allows).
func (p *patternParser) lexQuoted() (string, error) {
	start := p.pos
	p.pos++
	var b []byte
	plain := true
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch c {
		case '\'':
			p.pos++
			if plain {
				return p.src[start+1 : p.pos-1], nil
			}
			return string(b), nil
		case '\\':
			if p.pos+1 >= len(p.src) || (p.src[p.pos+1] != '\'' && p.src[p.pos+1] != '\\') {
				return "", p.errAt(p.pos, "invalid escape in string (only \\' and \\\\ are allowed)")
			}
			if plain {
				b = append(b, p.src[start+1:p.pos]...)
				plain = false
			}
			b = append(b, p.src[p.pos+1])
			p.pos += 2
		default:
			if !plain {
				b = append(b, c)
			}
			p.pos++
		}
	}
	return "", p.errAt(start, "unterminated string")
}

func (p *patternParser) lexNumber() error {
	s := p.src
	start := p.pos
	if s[p.pos] == '-' || s[p.pos] == '+' {
		p.pos++
	}
	digits := p.pos
	for p.pos < len(s) && isDigit(s[p.pos]) {
		p.pos++
	}
	intPart := s[digits:p.pos]
	if p.pos < len(s) && s[p.pos] == '.' && p.pos+1 < len(s) && isDigit(s[p.pos+1]) {
		p.pos++
		for p.pos < len(s) && isDigit(s[p.pos]) {
			p.pos++
		}
		p.tok = token{kind: tFloat, off: start, text: s[start:p.pos]}
		return nil
	}
	if intPart == "" {
		return p.errAt(start, "unexpected character %q", rune(s[start]))
	}
	if len(intPart) > 1 && intPart[0] == '0' {
		return p.errAt(start, "integer with a leading zero")
	}
	p.tok = token{kind: tInt, off: start, text: s[start:p.pos]}
	return nil
}

// numberMayFollow reports whether a '.' here may start a float such as .5:
// only after an operator, '(' or ','; elsewhere it separates path steps.
func (p *patternParser) numberMayFollow() bool {
	return p.pos+1 < len(p.src) && isDigit(p.src[p.pos+1]) &&
		(p.tok.kind == tOp || p.tok.kind == tKeyword || p.isPunct("(") || p.isPunct(","))
}

func (p *patternParser) isPunct(c string) bool { return p.tok.kind == tPunct && p.tok.text == c }
func (p *patternParser) isKW(k string) bool    { return p.tok.kind == tKeyword && p.tok.text == k }

func (p *patternParser) expectPunct(c string) error {
	if !p.isPunct(c) {
		return p.errAt(p.tok.off, "expected %q, found %s", c, p.tok.describe())
	}
	return p.next()
}

func (p *patternParser) enter() error {
	p.depth++
	if p.depth > maxPatternDepth {
		return p.errAt(p.tok.off, "pattern nested deeper than %d", maxPatternDepth)
	}
	return nil
}

// ---- observation expressions ----

func (p *patternParser) observationFollowedBy() (ObservationExpr, error) {
	left, err := p.observationOr()
	if err != nil {
		return nil, err
	}
	for p.isKW("FOLLOWEDBY") {
		if err := p.next(); err != nil {
			return nil, err
		}
		right, err := p.observationOr()
		if err != nil {
			return nil, err
		}
		left = &ObservationBinary{Op: "FOLLOWEDBY", Left: left, Right: right}
	}
	return left, nil
}

func (p *patternParser) observationOr() (ObservationExpr, error) {
	left, err := p.observationAnd()
	if err != nil {
		return nil, err
	}
	for p.isKW("OR") {
		if err := p.next(); err != nil {
			return nil, err
		}
		right, err := p.observationAnd()
		if err != nil {
			return nil, err
		}
		left = &ObservationBinary{Op: "OR", Left: left, Right: right}
	}
	return left, nil
}

func (p *patternParser) observationAnd() (ObservationExpr, error) {
	left, err := p.observationQualified()
	if err != nil {
		return nil, err
	}
	for p.isKW("AND") {
		if err := p.next(); err != nil {
			return nil, err
		}
		right, err := p.observationQualified()
		if err != nil {
			return nil, err
		}
		left = &ObservationBinary{Op: "AND", Left: left, Right: right}
	}
	return left, nil
}

func (p *patternParser) observationQualified() (ObservationExpr, error) {
	expr, err := p.observationPrimary()
	if err != nil {
		return nil, err
	}
	for {
		switch {
		case p.isKW("WITHIN"):
			off := p.tok.off
			if err := p.next(); err != nil {
				return nil, err
			}
			if p.tok.kind != tInt && p.tok.kind != tFloat {
				return nil, p.errAt(p.tok.off, "WITHIN needs a number of seconds, found %s", p.tok.describe())
			}
			secs := p.tok.text
			f, err := strconv.ParseFloat(secs, 64)
			if err != nil || !(f > 0) || secs[0] == '+' {
				return nil, p.errAt(p.tok.off, "WITHIN needs a positive number of seconds")
			}
			if err := p.next(); err != nil {
				return nil, err
			}
			if !p.isKW("SECONDS") {
				return nil, p.errAt(p.tok.off, "expected SECONDS after WITHIN at offset %d, found %s", off, p.tok.describe())
			}
			if err := p.next(); err != nil {
				return nil, err
			}
			expr = &ObservationQualified{Expr: expr, Kind: QualifierWithin, Seconds: secs}
		case p.isKW("REPEATS"):
			if err := p.next(); err != nil {
				return nil, err
			}
			if p.tok.kind != tInt {
				return nil, p.errAt(p.tok.off, "REPEATS needs a positive integer, found %s", p.tok.describe())
			}
			n, err := strconv.ParseInt(p.tok.text, 10, 64)
			if err != nil || n <= 0 || p.tok.text[0] == '+' {
				return nil, p.errAt(p.tok.off, "REPEATS needs a positive integer")
			}
			if err := p.next(); err != nil {
				return nil, err
			}
			if !p.isKW("TIMES") {
				return nil, p.errAt(p.tok.off, "expected TIMES, found %s", p.tok.describe())
			}
			if err := p.next(); err != nil {
				return nil, err
			}
			expr = &ObservationQualified{Expr: expr, Kind: QualifierRepeats, Times: n}
		case p.isKW("START"):
			if err := p.next(); err != nil {
				return nil, err
			}
			start, err := p.timestampToken()
			if err != nil {
				return nil, err
			}
			if !p.isKW("STOP") {
				return nil, p.errAt(p.tok.off, "expected STOP, found %s", p.tok.describe())
			}
			if err := p.next(); err != nil {
				return nil, err
			}
			stopOff := p.tok.off
			stop, err := p.timestampToken()
			if err != nil {
				return nil, err
			}
			if !stop.After(start) {
				return nil, p.errAt(stopOff, "STOP must be later than START")
			}
			expr = &ObservationQualified{Expr: expr, Kind: QualifierStartStop, Start: start, Stop: stop}
		default:
			return expr, nil
		}
	}
}

func (p *patternParser) timestampToken() (time.Time, error) {
	if p.tok.kind != tTimestamp {
		return time.Time{}, p.errAt(p.tok.off, "expected a timestamp t'...', found %s", p.tok.describe())
	}
	t, err := parseTimestamp(p.tok.text)
	if err != nil {
		return time.Time{}, p.errAt(p.tok.off, "invalid timestamp: %v", err)
	}
	return t, p.next()
}

func (p *patternParser) observationPrimary() (ObservationExpr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	switch {
	case p.isPunct("["):
		if err := p.next(); err != nil {
			return nil, err
		}
		c, err := p.comparisonOr()
		if err != nil {
			return nil, err
		}
		if err := p.expectPunct("]"); err != nil {
			return nil, err
		}
		return &ObservationComparison{Expr: c}, nil
	case p.isPunct("("):
		if err := p.next(); err != nil {
			return nil, err
		}
		o, err := p.observationFollowedBy()
		if err != nil {
			return nil, err
		}
		if err := p.expectPunct(")"); err != nil {
			return nil, err
		}
		return o, nil
	}
	if p.tok.kind == tEOF {
		return nil, p.errAt(p.tok.off, "unexpected end of pattern, expected '[' or '('")
	}
	return nil, p.unexpected()
}

// ---- comparison expressions ----

func (p *patternParser) comparisonOr() (ComparisonExpr, error) {
	left, err := p.comparisonAnd()
	if err != nil {
		return nil, err
	}
	for p.isKW("OR") {
		if err := p.next(); err != nil {
			return nil, err
		}
		right, err := p.comparisonAnd()
		if err != nil {
			return nil, err
		}
		left = &ComparisonBinary{Op: "OR", Left: left, Right: right}
	}
	return left, nil
}

func (p *patternParser) comparisonAnd() (ComparisonExpr, error) {
	left, err := p.propTest()
	if err != nil {
		return nil, err
	}
	for p.isKW("AND") {
		if err := p.next(); err != nil {
			return nil, err
		}
		right, err := p.propTest()
		if err != nil {
			return nil, err
		}
		left = &ComparisonBinary{Op: "AND", Left: left, Right: right}
	}
	return left, nil
}

func (p *patternParser) propTest() (ComparisonExpr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	if p.isPunct("(") {
		if err := p.next(); err != nil {
			return nil, err
		}
		c, err := p.comparisonOr()
		if err != nil {
			return nil, err
		}
		if err := p.expectPunct(")"); err != nil {
			return nil, err
		}
		return c, nil
	}
	if p.isKW("EXISTS") {
		if err := p.next(); err != nil {
			return nil, err
		}
		path, err := p.objectPath()
		if err != nil {
			return nil, err
		}
		return &Comparison{Path: path, Op: "EXISTS"}, nil
	}
	path, err := p.objectPath()
	if err != nil {
		return nil, err
	}
	c := &Comparison{Path: path}
	if p.isKW("NOT") {
		c.Negated = true
		if err := p.next(); err != nil {
			return nil, err
		}
	}
	opTok := p.tok
	switch {
	case p.tok.kind == tOp:
		c.Op = p.tok.text
	case p.tok.kind == tKeyword && (p.tok.text == "IN" || p.tok.text == "LIKE" || p.tok.text == "MATCHES" ||
		p.tok.text == "ISSUBSET" || p.tok.text == "ISSUPERSET"):
		c.Op = p.tok.text
	default:
		return nil, p.errAt(p.tok.off, "expected a comparison operator, found %s", p.tok.describe())
	}
	if err := p.next(); err != nil {
		return nil, err
	}
	switch c.Op {
	case "IN":
		if err := p.expectPunct("("); err != nil {
			return nil, err
		}
		c.Set = []Literal{}
		for !p.isPunct(")") {
			if len(c.Set) > 0 {
				if err := p.expectPunct(","); err != nil {
					return nil, err
				}
			}
			l, err := p.literal()
			if err != nil {
				return nil, err
			}
			c.Set = append(c.Set, l)
		}
		if err := p.next(); err != nil {
			return nil, err
		}
	case "LIKE", "MATCHES", "ISSUBSET", "ISSUPERSET":
		if p.tok.kind != tString {
			return nil, p.errAt(p.tok.off, "%s needs a string, found %s", c.Op, p.tok.describe())
		}
		l, err := p.literal()
		if err != nil {
			return nil, err
		}
		c.Value = l
	default:
		off := p.tok.off
		l, err := p.literal()
		if err != nil {
			return nil, err
		}
		if l.Kind == LitBool && c.Op != "=" && c.Op != "!=" {
			return nil, p.errAt(off, "operator %s cannot compare a boolean", opTok.text)
		}
		c.Value = l
	}
	return c, nil
}

func (p *patternParser) literal() (Literal, error) {
	t := p.tok
	var l Literal
	switch t.kind {
	case tString:
		l = Literal{Kind: LitString, Text: t.text}
	case tInt:
		n, err := strconv.ParseInt(t.text, 10, 64)
		if err != nil {
			return l, p.errAt(t.off, "integer %s out of range", t.text)
		}
		l = Literal{Kind: LitInt, Text: t.text, Int: n}
	case tFloat:
		l = Literal{Kind: LitFloat, Text: t.text}
	case tBool:
		l = Literal{Kind: LitBool, Text: t.text}
	case tTimestamp:
		ts, err := parseTimestamp(t.text)
		if err != nil {
			return l, p.errAt(t.off, "invalid timestamp: %v", err)
		}
		l = Literal{Kind: LitTimestamp, Text: t.text, Time: ts}
	case tHex:
		if len(t.text)%2 != 0 {
			return l, p.errAt(t.off, "hex literal has an odd number of digits")
		}
		b, err := hex.DecodeString(t.text)
		if err != nil {
			return l, p.errAt(t.off, "invalid hex literal")
		}
		l = Literal{Kind: LitHex, Text: t.text, Bytes: b}
	case tBinary:
		b, err := base64.StdEncoding.Strict().DecodeString(t.text)
		if err != nil || strings.ContainsAny(t.text, "\r\n") {
			return l, p.errAt(t.off, "invalid base64 literal")
		}
		l = Literal{Kind: LitBinary, Text: t.text, Bytes: b}
	default:
		return l, p.errAt(t.off, "expected a constant, found %s", t.describe())
	}
	return l, p.next()
}

func (p *patternParser) objectPath() (ObjectPath, error) {
	var path ObjectPath
	if p.tok.kind != tIdent {
		return path, p.errAt(p.tok.off, "expected an object path, found %s", p.tok.describe())
	}
	// Lowercase only, as type names are; length is left to the object
	// rules (a pattern naming a type that cannot exist just never matches).
	if t := p.tok.text; t[0] < 'a' || t[0] > 'z' || !isLowerHyphen(t) {
		return path, p.errAt(p.tok.off, "invalid object type %q", p.tok.text)
	}
	path.ObjectType = p.tok.text
	if err := p.next(); err != nil {
		return path, err
	}
	// The ':' must follow the type directly.
	if !p.isPunct(":") {
		return path, p.errAt(p.tok.off, "expected ':' after object type, found %s", p.tok.describe())
	}
	if err := p.next(); err != nil {
		return path, err
	}
	key, err := p.pathKey()
	if err != nil {
		return path, err
	}
	path.Steps = append(make([]PathStep, 0, 2), PathStep{Key: key})
	for {
		switch {
		case p.isPunct("."):
			if err := p.next(); err != nil {
				return path, err
			}
			key, err := p.pathKey()
			if err != nil {
				return path, err
			}
			path.Steps = append(path.Steps, PathStep{Key: key})
		case p.isPunct("["):
			// '[' after a path is a list index; the observation's own ']'
			// cannot be confused with it because a path never ends in '['.
			if err := p.next(); err != nil {
				return path, err
			}
			switch {
			case p.isPunct("*"):
				path.Steps = append(path.Steps, PathStep{Any: true})
			case p.tok.kind == tInt:
				n, err := strconv.ParseInt(p.tok.text, 10, 64)
				if err != nil || p.tok.text[0] == '+' {
					return path, p.errAt(p.tok.off, "invalid list index %s", p.tok.text)
				}
				path.Steps = append(path.Steps, PathStep{Index: n})
			default:
				return path, p.errAt(p.tok.off, "expected a list index or '*', found %s", p.tok.describe())
			}
			if err := p.next(); err != nil {
				return path, err
			}
			if err := p.expectPunct("]"); err != nil {
				return path, err
			}
		default:
			return path, nil
		}
	}
}

func (p *patternParser) pathKey() (string, error) {
	switch {
	case p.tok.kind == tString:
		// An empty name names no property (and a step with an empty key
		// is how the tree spells a list index).
		if p.tok.text == "" {
			return "", p.errAt(p.tok.off, "empty property name")
		}
		k := p.tok.text
		return k, p.next()
	case p.tok.kind == tIdent && !strings.Contains(p.tok.text, "-"):
		k := p.tok.text
		return k, p.next()
	case p.tok.kind == tIdent:
		return "", p.errAt(p.tok.off, "property name %q contains '-' and must be quoted", p.tok.text)
	}
	return "", p.errAt(p.tok.off, "expected a property name, found %s", p.tok.describe())
}
