#pragma once
/// One thread that serves requests in the order they were posted, and runs an idle task between
/// them: the shape of both journal readers (PostgreSQL's and JetStream's). Posting takes a mutex
/// (requests are rare: a subscriber resuming beyond the ring); the thread owns whatever `serve` and
/// `idle` touch (a connection), so nothing else needs a lock.

#include <pthread.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

namespace lam::daemon {

template <class Request>
class RequestThread {
 public:
  RequestThread() = default;
  RequestThread(const RequestThread&) = delete;
  RequestThread& operator=(const RequestThread&) = delete;
  ~RequestThread() { stop(); }

  /// Starts the thread, named `name` (at most 15 characters: `top -H`, `ps -L`). `idle`, when
  /// given, runs on it at least every `idle_every` while no request waits.
  void start(std::string name, std::function<void(Request&)> serve,
             std::function<void()> idle = nullptr,
             std::chrono::milliseconds idle_every = std::chrono::seconds(1)) {
    thread_ = std::thread([this, name = std::move(name), serve = std::move(serve),
                           idle = std::move(idle), idle_every] {
      pthread_setname_np(pthread_self(), name.c_str());
      for (;;) {
        Request req;
        bool got = false;
        {
          std::unique_lock lock(mu_);
          const auto ready = [&] { return stopping_ || !requests_.empty(); };
          if (idle)
            cv_.wait_for(lock, idle_every, ready);
          else
            cv_.wait(lock, ready);
          if (stopping_) break;
          if (!requests_.empty()) {
            req = std::move(requests_.front());
            requests_.pop_front();
            got = true;
          }
        }
        if (got)
          serve(req);
        else if (idle)
          idle();
      }
    });
  }

  void post(Request r) {
    {
      std::lock_guard lock(mu_);
      requests_.push_back(std::move(r));
    }
    cv_.notify_one();
  }

  /// Stops after the request being served (waiting ones are dropped) and joins. Idempotent.
  void stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Request> requests_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace lam::daemon
