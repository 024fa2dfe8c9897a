module github.com/presenced/presenced

go 1.26
