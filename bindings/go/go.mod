module github.com/mapcache/mapcache-go

go 1.24
