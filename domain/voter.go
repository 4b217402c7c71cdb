package domain

import (
	"time"
)

// Voter is a registered voter. Only aggregates over voters ever leave the
// system; a voter's identity is never linked to a choice.
type Voter struct {
	id           string
	name         string
	gender       string
	birthDate    time.Time
	region       Region
	city         string
	registeredAt time.Time
}

// NewVoter validates a voter: gender is required and mapped onto the closed
// vocabulary (NormalizeGender), the birth date must make the voter between 0
// and 130 years old at registration.
func NewVoter(id, name, gender string, birthDate time.Time, region Region, city string, registeredAt time.Time) (Voter, error) {
	if err := validID("voter_id", id); err != nil {
		return Voter{}, err
	}
	if err := validText("name", name, maxNameLen, true); err != nil {
		return Voter{}, err
	}
	gender, err := NormalizeGender(gender)
	if err != nil {
		return Voter{}, err
	}
	if region == (Region{}) {
		return Voter{}, invalid("region", "is required")
	}
	if err := validText("city", city, 100, true); err != nil {
		return Voter{}, err
	}
	if registeredAt.IsZero() {
		return Voter{}, invalid("registered_at", "is required")
	}
	if birthDate.IsZero() {
		return Voter{}, invalid("birth_date", "is required")
	}
	if birthDate.After(registeredAt) {
		return Voter{}, invalid("birth_date", "is after registered_at")
	}
	if birthDate.Before(registeredAt.AddDate(-130, 0, 0)) {
		return Voter{}, invalid("birth_date", "makes the voter older than 130")
	}
	return Voter{id: id, name: name, gender: gender, birthDate: birthDate, region: region, city: city, registeredAt: registeredAt.UTC()}, nil
}

// ID returns the voter's identifier.
func (v Voter) ID() string { return v.id }

// Name returns the voter's name.
func (v Voter) Name() string { return v.name }

// Gender returns the voter's gender: one of Genders().
func (v Voter) Gender() string { return v.gender }

// BirthDate returns the voter's date of birth (UTC midnight).
func (v Voter) BirthDate() time.Time { return v.birthDate }

// Region returns where the voter is registered.
func (v Voter) Region() Region { return v.region }

// City returns the voter's city.
func (v Voter) City() string { return v.city }

// RegisteredAt returns when the voter registered.
func (v Voter) RegisteredAt() time.Time { return v.registeredAt }
