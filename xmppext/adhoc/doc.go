// Package adhoc implements the responder side of XEP-0050: Ad-Hoc Commands:
// commands listed for the requester, disco#info per command node, sessions
// across stages (execute, next, complete, cancel), and the XEP's errors.
//
// The forms a command sends and receives are mellium's XEP-0004 forms
// (mellium.im/xmpp/form): a command builds its Response.Form with form.New
// and reads Request.Form with (*form.Data).Raw, which gives the values as
// submitted whatever type the submission gives its fields (requesters may
// omit it, and form's typed getters then see a text-single). form writes a
// field's type always (text-single where none is chosen, XEP-0004's
// default), skips empty values and JID values that do not parse, and keeps
// one value for single-valued types: lists of lines go in text-multi.
//
// What stays hand-written, and why: no part of the data forms (every form
// the XEP-0133 commands send fits form.Data, with fields that have a type,
// label, required flag and values and no result with reported and items;
// every submission they read parses into it). The command element with its
// actions, note and form, the sessions and the dispatch stay, because
// mellium's commands package is the requester's side: its Response writes
// a command element with no children, and it has no handler or sessions.
// The errors stay as well: stanza.Error could carry XEP-0050's specific
// condition (through Wrap), but it writes it after the text, not before as
// here, so the move is a wire change of its own.
package adhoc // import "github.com/presenced/presenced/xmppext/adhoc"
