package agreement

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/parley-cti/parley/internal/fault"
)

// TLP is a Traffic Light Protocol level, ordered from least to most
// restrictive. The zero value is not a level.
type TLP int

// TLP 2.0 levels. TLP 1.0 WHITE is CLEAR.
const (
	TLPClear TLP = iota + 1
	TLPGreen
	TLPAmber
	TLPAmberStrict
	TLPRed
)

var tlpNames = [...]string{TLPClear: "clear", TLPGreen: "green", TLPAmber: "amber", TLPAmberStrict: "amber+strict", TLPRed: "red"}

// String is the lowercase name used in agreement documents ("amber+strict").
func (t TLP) String() string {
	if t < TLPClear || t > TLPRed {
		return fmt.Sprintf("TLP(%d)", int(t))
	}
	return tlpNames[t]
}

// Label is the conventional display form ("TLP:AMBER+STRICT").
func (t TLP) Label() string { return "TLP:" + strings.ToUpper(t.String()) }

// ParseTLP reads a level name as written in agreement documents.
func ParseTLP(s string) (TLP, error) {
	for t := TLPClear; t <= TLPRed; t++ {
		if tlpNames[t] == s {
			return t, nil
		}
	}
	return 0, fmt.Errorf("unknown TLP %q", s)
}

// The STIX marking-definition ids of the TLP levels: the TLP 2.0 ones from the
// OASIS TLP 2.0 extension and the TLP 1.0 ones from STIX 2.1 section 7.2.1.4.
var tlpMarkings = map[string]TLP{
	"marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487": TLPClear,
	"marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb": TLPGreen,
	"marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421": TLPAmber,
	"marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003": TLPAmberStrict,
	"marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1": TLPRed,
	// TLP 1.0
	"marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": TLPClear, // WHITE
	"marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": TLPGreen,
	"marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": TLPAmber,
	"marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": TLPRed,
}

// TLPOfMarking returns the level a marking-definition id stands for, and
// false when the id is not a standard TLP marking.
func TLPOfMarking(markingID string) (TLP, bool) {
	t, ok := tlpMarkings[markingID]
	return t, ok
}

// MarkingID returns the TLP 2.0 marking-definition id of t, or "" when t is
// not a level.
func MarkingID(t TLP) string {
	if t < TLPClear || t > TLPRed {
		return ""
	}
	return tlp2Markings[t]
}

var tlp2Markings = [...]string{
	TLPClear:       "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
	TLPGreen:       "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
	TLPAmber:       "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
	TLPAmberStrict: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
	TLPRed:         "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}

// HighestTLP returns the most restrictive TLP level among markings, ignoring
// markings that are not TLP levels, and false when there is none.
func HighestTLP(markings []string) (TLP, bool) {
	var highest TLP
	for _, m := range markings {
		if t, ok := tlpMarkings[m]; ok && t > highest {
			highest = t
		}
	}
	return highest, highest != 0
}

// CheckScope decides whether an object of type stixType carrying the given
// marking-definition ids (object_marking_refs and any granular marking refs)
// may flow under scope. It returns nil or an error wrapping ErrOutOfScope
// that says why.
func CheckScope(scope Scope, stixType string, markings []string) error {
	if !slices.Contains(scope.Types, stixType) {
		return fault.Errorf("%w: type %q is outside the agreement's scope", ErrOutOfScope, stixType)
	}
	level, marked := HighestTLP(markings)
	if !marked {
		if !scope.AllowUnmarked {
			return fault.Errorf("%w: unmarked objects are refused by this agreement", ErrOutOfScope)
		}
		return nil
	}
	if level > scope.MaxTLP {
		return fault.Errorf("%w: marked %s, above the agreement's highest %s", ErrOutOfScope, level.Label(), scope.MaxTLP.Label())
	}
	return nil
}

// Weight is the number of credits one object of stixType earns: its weight
// in the terms, or 1 when the terms give none.
func Weight(terms Terms, stixType string) float64 {
	if w, ok := terms.Weights[stixType]; ok {
		return w
	}
	return 1
}

// Allowance is how many objects a party holding credits may read:
// floor(grace + get/give × credits). Negative credits count as none; the
// result saturates at math.MaxInt64.
func Allowance(terms Terms, credits float64) int64 {
	if !(credits > 0) {
		credits = 0
	}
	// Multiply before dividing so whole ratios such as 3:1 stay exact.
	x := float64(terms.Grace) + terms.Get*credits/terms.Give
	if math.IsNaN(x) || x <= 0 {
		return 0
	}
	if x >= math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(math.Floor(x))
}

// Unlocks is how many more objects one more credit would make readable for a
// party now holding credits.
func Unlocks(terms Terms, credits float64) int64 {
	if !(credits > 0) {
		credits = 0
	}
	return Allowance(terms, credits+1) - Allowance(terms, credits)
}

// CreditsFor is the smallest number of credits at which Allowance reaches
// objects; 0 when grace alone covers them.
func CreditsFor(terms Terms, objects int64) float64 {
	need := float64(objects - terms.Grace)
	if need <= 0 {
		return 0
	}
	c := need * terms.Give / terms.Get
	// Rounding can leave c a hair short; step up to the next double until
	// the allowance really covers objects.
	for i := 0; i < 64 && Allowance(terms, c) < objects; i++ {
		c = math.Nextafter(c, math.Inf(1))
	}
	return c
}
