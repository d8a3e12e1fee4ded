//! CPU: the process's CPU use over the run (100% is one full core).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;

use crate::app::App;
use crate::ui::timechart::{Series, TimeChart};

pub(crate) fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let run = || app.samples().filter(|s| s.phase != "drain");
    let series = vec![Series {
        name: "process",
        colour: Color::LightGreen,
        points: run().map(|s| (s.t_s, s.cpu_percent)).collect(),
        now: run()
            .next_back()
            .map_or_else(String::new, |s| runlog::human::percent(s.cpu_percent)),
    }];
    TimeChart::new("CPU (100% = one core)", series, runlog::human::percent).render(app, area, buf);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::testing::{app_with_samples, draw, text};

    #[test]
    fn charts_the_process_cpu_in_percent() {
        let app = app_with_samples(10);
        let buf = draw(60, 10, |area, buf| render(&app, area, buf));
        let screen = text(&buf);
        assert!(screen.contains("CPU (100% = one core)"), "{screen}");
        assert!(screen.contains("process 180.00%"), "{screen}");
        assert!(screen.contains("198.00%"), "the axis top\n{screen}");
    }
}
