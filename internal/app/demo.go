package app

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/handlers"
	"github.com/votewatch/votewatch/infra/postgres"
	"github.com/votewatch/votewatch/infra/simulator"
)

// PrepareDataDir returns the demo's data dir (dir, or the user cache
// dir), created; with fresh, the stored election (the embedded broker's log
// and the private database) is discarded first.
func PrepareDataDir(log *slog.Logger, dir string, fresh bool) (string, error) {
	if dir == "" {
		var err error
		if dir, err = postgres.DefaultDir(); err != nil {
			return "", err
		}
	}
	if fresh {
		log.Info("discarding the stored election", "dir", dir)
		for _, sub := range []string{"kafka", "postgres"} {
			if err := os.RemoveAll(filepath.Join(dir, sub)); err != nil {
				return "", fmt.Errorf("discard %s: %w", sub, err)
			}
		}
	}
	// Searchable by others: the private PostgreSQL runs as the postgres
	// user when votewatch runs as root. Its own directories stay private.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create data dir: %w", err)
	}
	return dir, nil
}

// DemoStations returns stations and "<your token>" or, when there are
// none, the demo's own station and its token (configured tokens are
// secrets and never shown). The demo's station serves the first region of
// the election in electionConfig: votes it takes for voters elsewhere are
// rejected as wrong_station.
func DemoStations(stations []handlers.Station, electionConfig string) ([]handlers.Station, string, error) {
	if len(stations) > 0 {
		return stations, "<your token>", nil
	}
	cfg, err := simulator.LoadElection(electionConfig)
	if err != nil {
		return nil, "", err
	}
	region, err := domain.NewRegion(cfg.Regions[0].Name)
	if err != nil {
		return nil, "", err
	}
	demo := DemoStation(region)
	return []handlers.Station{demo}, demo.Token, nil
}

// PrintDemoBanner tells the demo's user where everything is: the API at
// api, the brokers, the database (where), and the intake with station and
// its token as shown.
func PrintDemoBanner(w io.Writer, api string, brokers []string, where string, station handlers.Station, token string) {
	fmt.Fprintf(w, "\nvotewatch demo is running\n"+
		"  dashboard and API  http://%s/\n"+
		"  summary            http://%s/api/v1/summary\n"+
		"  Kafka bootstrap    %s  (topics candidates, voters, votes)\n"+
		"  PostgreSQL         %s\n"+
		"  intake API         POST http://%s/api/v1/votes  (station %s, region %s: Authorization: Bearer %s)\n"+
		"Press Ctrl-C to stop.\n\n", api, api, strings.Join(brokers, ","), where,
		api, station.Name, station.Region, token)
}
