package app

import (
	"errors"

	"github.com/presenced/presenced/component/mongooseim"
)

// Provisioner returns what `presenced provision` runs: the provisioner
// that puts the component o.JID on users' rosters on MongooseIM, through
// its REST admin API (-mongooseim-rest and its credentials) and its
// database (-mongooseim-database). The error names the first of those
// settings that is missing.
func (o Config) Provisioner() (*mongooseim.Provisioner, error) {
	const see = " (docs/setup-mongooseim.md, section 2)"
	switch {
	case o.MongooseIMREST.URL == "":
		return nil, errors.New("-mongooseim-rest (PRESENCED_MONGOOSEIM_REST) is required: MongooseIM's REST admin API, e.g. http://mongooseim:8088/api" + see)
	case o.MongooseIMREST.User == "":
		return nil, errors.New("-mongooseim-rest-user (PRESENCED_MONGOOSEIM_REST_USER) is required: the REST admin handler's username" + see)
	case o.MongooseIMREST.Password == "":
		return nil, errors.New("-mongooseim-rest-password (PRESENCED_MONGOOSEIM_REST_PASSWORD) is required: the REST admin handler's password" + see)
	case o.MongooseIMDatabase == "":
		return nil, errors.New("-mongooseim-database (PRESENCED_MONGOOSEIM_DATABASE) is required: MongooseIM's PostgreSQL, postgres://..." + see)
	}
	return &mongooseim.Provisioner{REST: o.MongooseIMREST, Database: o.MongooseIMDatabase, Component: o.JID}, nil
}
