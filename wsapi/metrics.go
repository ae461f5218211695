package wsapi

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// wsMetrics counts connections and frames.
type wsMetrics struct {
	opened    prometheus.Counter
	framesIn  *prometheus.CounterVec
	framesOut *prometheus.CounterVec
}

func newWSMetrics(reg *prometheus.Registry, s *Server) *wsMetrics {
	m := &wsMetrics{
		opened: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zaqar_ws_connections_total", Help: "Websocket connections accepted.",
		}),
		framesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zaqar_ws_frames_in_total", Help: "Websocket request frames received, by action.",
		}, []string{"action"}),
		framesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zaqar_ws_frames_out_total", Help: "Websocket frames sent, by action and status (notifications have status 0).",
		}, []string{"action", "status"}),
	}
	reg.MustRegister(m.opened, m.framesIn, m.framesOut,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "zaqar_ws_connections_open", Help: "Websocket connections open now.",
		}, func() float64 { return float64(s.OpenConnections()) }))
	return m
}

func (m *wsMetrics) in(action string) { m.framesIn.WithLabelValues(action).Inc() }

func (m *wsMetrics) out(action string, status int) {
	m.framesOut.WithLabelValues(action, strconv.Itoa(status)).Inc()
}
