package stix

// Standard TLP marking-definition ids. TLP 1.0 ids come from the STIX 2.1
// specification (section 7.2.1.4); TLP 2.0 ids from the OASIS
// cti-stix-common-objects TLP 2.0 extension.
const (
	TLPWhite = "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"
	TLPGreen = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"
	TLPAmber = "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"
	TLPRed   = "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"

	TLP2Clear       = "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"
	TLP2Green       = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
	TLP2Amber       = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
	TLP2AmberStrict = "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"
	TLP2Red         = "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"

	// TLP2ExtensionID is the extension-definition that TLP 2.0 markings use.
	TLP2ExtensionID = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
)

// TLP levels, least restrictive first. TLP 1.0 WHITE is CLEAR; TLP 1.0
// AMBER is AMBER.
const (
	TLPLevelClear = iota
	TLPLevelGreen
	TLPLevelAmber
	TLPLevelAmberStrict
	TLPLevelRed
)

var tlpLevels = map[string]int{
	TLPWhite: TLPLevelClear, TLP2Clear: TLPLevelClear,
	TLPGreen: TLPLevelGreen, TLP2Green: TLPLevelGreen,
	TLPAmber: TLPLevelAmber, TLP2Amber: TLPLevelAmber,
	TLP2AmberStrict: TLPLevelAmberStrict,
	TLPRed:          TLPLevelRed, TLP2Red: TLPLevelRed,
}

// TLPLevel returns the TLP level of a standard TLP 1.0 or 2.0
// marking-definition id; ok is false for any other id.
func TLPLevel(markingID string) (level int, ok bool) {
	level, ok = tlpLevels[markingID]
	return level, ok
}

// tlp1IDs maps a TLP 1.0 definition value to the id the spec fixes for it.
var tlp1IDs = map[string]string{"white": TLPWhite, "green": TLPGreen, "amber": TLPAmber, "red": TLPRed}

// tlp2IDs maps a TLP 2.0 tlp_2_0 value to its standard id.
var tlp2IDs = map[string]string{
	"clear": TLP2Clear, "green": TLP2Green, "amber": TLP2Amber, "amber+strict": TLP2AmberStrict, "red": TLP2Red,
}
